# goal: search the API function openfile through __wrapped__, __closure__ cells, __defaults__, __kwdefaults__ and __globals__ for a module that can open host files
# capability: file
# stopped-by: language, landlock
INTERNALS = ("__wrapped__", "__func__", "__self__", "__closure__", "cell_contents", "__defaults__", "__kwdefaults__", "__globals__")


def find_module_with(start, wanted):
    seen = set()
    queue = [start]
    while queue and len(seen) < 5000:
        item = queue.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        if type(item).__name__ == "module" and hasattr(item, wanted):
            return item
        if isinstance(item, dict):
            queue.extend(item.values())
            continue
        for name in INTERNALS:
            try:
                value = getattr(item, name)
            except Exception:
                continue
            if isinstance(value, tuple | list):
                queue.extend(value)
            elif value is not None:
                queue.append(value)
    return None


module = find_module_with(openfile, "open")
if module is None:
    print("blocked: nothing with open reachable from openfile")
else:
    try:
        if hasattr(module, "O_RDONLY"):
            data = module.read(module.open("/etc/passwd", module.O_RDONLY), 64)
        else:
            data = module.open("/etc/passwd", "rb").read(64)
    except OSError as error:
        print("blocked:", error)
    else:
        print("ESCAPED: read /etc/passwd through", module.__name__, data[:16])
