# goal: reach the format builtin (hidden behind the name ban) and follow format.__self__ to the host builtins module
# capability: file
# stopped-by: language, landlock
host_builtins = format.__self__
try:
    data = host_builtins.open("/etc/passwd", "rb").read(64)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
