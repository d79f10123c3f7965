# goal: call object.__getattribute__ with a dunder name built at run time from chr(95) to fetch len.__self__ and open a host file
# capability: file
# stopped-by: language, landlock
underscores = chr(95) * 2
host_builtins = object.__getattribute__(len, underscores + "self" + underscores)
try:
    data = host_builtins.open("/etc/passwd", "rb").read(64)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
