# goal: call the open builtin on a host file
# capability: file
# stopped-by: language, landlock
try:
    with open("/etc/passwd", "rb") as handle:
        data = handle.read(64)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
