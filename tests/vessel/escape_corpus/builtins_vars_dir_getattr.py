# goal: enumerate attributes with dir()/vars() and fetch them with getattr(), so dunder names never appear in the source, then open a host file
# capability: file
# stopped-by: language, landlock
opener = None
for name in dir(len):
    if name.endswith("self" + "_" * 2):
        opener = vars(getattr(len, name)).get("open")
if opener is None:
    print("blocked: open not reachable")
else:
    try:
        data = opener("/etc/passwd", "rb").read(64)
    except OSError as error:
        print("blocked:", error)
    else:
        print("ESCAPED: read /etc/passwd:", data[:16])
