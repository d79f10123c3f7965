# goal: reach /etc/passwd through the /proc/self/root and /proc/self/cwd magic links, absolute or relative to the vessel directory
# capability: file
# stopped-by: api, landlock
for name in ("/proc/self/root/etc/passwd", "/proc/self/cwd/../../../../etc/passwd", "../../../../proc/self/root/etc/passwd"):
    try:
        handle = openfile(name, False)
    except Exception as error:
        print("refused", repr(name), repr(error))
        continue
    data = handle.readat(64, 0)
    handle.close()
    if data.startswith(b"root:"):
        print("ESCAPED: read /etc/passwd through", repr(name))
