# goal: find the os module among the module globals behind the API functions (openfile's closure and __globals__) and fork with it
# capability: process
# stopped-by: language, seccomp
def find_os(start):
    seen = set()
    queue = [start]
    while queue and len(seen) < 5000:
        item = queue.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        if type(item).__name__ == "module" and hasattr(item, "fork"):
            return item
        if isinstance(item, dict):
            queue.extend(item.values())
            continue
        for name in ("__wrapped__", "__closure__", "cell_contents", "__globals__"):
            value = getattr(item, name, None)
            if isinstance(value, tuple):
                queue.extend(value)
            elif value is not None:
                queue.append(value)
    return None


os_module = find_os(openfile)
if os_module is None:
    print("blocked: no os module behind openfile")
else:
    try:
        pid = os_module.fork()
    except OSError as error:
        print("blocked:", error)
    else:
        if pid == 0:
            os_module._exit(0)
        os_module.waitpid(pid, 0)
        print("ESCAPED: forked child", pid)
