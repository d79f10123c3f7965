# goal: read the class dict of an API file object (type(f).__dict__), take the functions stored there and follow their __globals__ to the host builtins
# capability: file
# stopped-by: language, landlock
handle = openfile("introspection-probe.txt", True)
opener = None
for value in type(handle).__dict__.values():
    namespace = getattr(value, "__globals__", None)
    if namespace is not None:
        host_builtins = namespace["__builtins__"]
        opener = host_builtins["open"] if isinstance(host_builtins, dict) else host_builtins.open
        break
handle.close()
if opener is None:
    print("blocked: no function with globals in the class dict")
else:
    try:
        data = opener("/etc/passwd", "rb").read(64)
    except OSError as error:
        print("blocked:", error)
    else:
        print("ESCAPED: read /etc/passwd:", data[:16])
