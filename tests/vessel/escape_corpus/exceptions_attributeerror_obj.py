# goal: AttributeError.obj hands back the object a lookup failed on; fail a lookup on len and follow obj.__self__ to the host builtins
# capability: file
# stopped-by: language, landlock
target = None
try:
    missing = len.no_such_attribute
except AttributeError as error:
    target = error.obj
host_builtins = target.__self__
try:
    data = host_builtins.open("/etc/passwd", "rb").read(64)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
