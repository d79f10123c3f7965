# goal: a __getattribute__ hook sees every attribute read of its object; read the real attributes behind the name rules through it
# capability: file
# stopped-by: language, landlock
class Spy:
    def __getattribute__(self, name):
        return object.__getattribute__(len, name)


spy = Spy()
host_builtins = spy.__self__
try:
    data = host_builtins.open("/etc/passwd", "rb").read(64)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
