# goal: a __class_getitem__ hook receives whatever is subscripted; hand it len and follow len.__self__ to the host builtins
# capability: file
# stopped-by: language, landlock
class Box:
    def __class_getitem__(cls, item):
        return item.__self__


host_builtins = Box[len]
try:
    data = host_builtins.open("/etc/passwd", "rb").read(64)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
