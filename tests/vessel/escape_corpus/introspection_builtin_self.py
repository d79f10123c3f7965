# goal: a safe builtin is still the real builtin function, so len.__self__ is the host builtins module with open
# capability: file
# stopped-by: language, landlock
host_builtins = len.__self__
try:
    data = host_builtins.open("/etc/passwd", "rb").read(64)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
