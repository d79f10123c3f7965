# goal: call the class of an API file object (reachable as type(f)) with arguments of the program's choosing, to make a file object for a host path
# capability: file
# stopped-by: api, landlock
handle = openfile("instantiate.txt", True)
file_class = type(handle)
for arguments in ((), ("/etc/passwd",), ("/etc/passwd", False), (0,)):
    try:
        made = file_class(*arguments)
    except Exception as error:
        print("constructor refused", arguments, repr(error))
        continue
    try:
        data = made.readat(64, 0)
    except Exception as error:
        print("made an object without usable methods:", repr(error))
        continue
    if data.startswith(b"root:"):
        print("ESCAPED: read /etc/passwd through a hand-made file object")
try:
    class Subclass(file_class):
        pass
except Exception as error:
    print("subclassing refused:", repr(error))
else:
    print("subclassing allowed, but it gives no new constructor")
handle.close()
