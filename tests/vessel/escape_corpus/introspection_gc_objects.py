# goal: import gc and search gc.get_objects() for the host builtins module, then open a host file with it
# capability: file
# stopped-by: language, landlock
import gc

gc.unfreeze()  # the zygote froze its heap before forking; frozen objects are invisible to get_objects()
opener = None
for item in gc.get_objects():
    if isinstance(item, dict) and item.get("__name__") == "builtins" and "open" in item:
        opener = item["open"]
        break
if opener is None:
    print("blocked: the builtins module dict was not found")
else:
    try:
        data = opener("/etc/passwd", "rb").read(64)
    except OSError as error:
        print("blocked:", error)
    else:
        print("ESCAPED: read /etc/passwd:", data[:16])
