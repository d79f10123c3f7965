# goal: breakpoint, input and help are host builtins bound to the builtins module; follow breakpoint.__self__ to the real open
# capability: file
# stopped-by: language, landlock
opener = None
for hook in (breakpoint, input, help):
    owner = getattr(hook, "__self__", None)
    if owner is not None and hasattr(owner, "open"):
        opener = owner.open
        break
if opener is None:
    print("blocked: no owner module with open")
else:
    try:
        data = opener("/etc/passwd", "rb").read(64)
    except OSError as error:
        print("blocked:", error)
    else:
        print("ESCAPED: read /etc/passwd:", data[:16])
