# goal: reach object through str.mro() instead of __base__, then walk its subclasses to the os module and fork
# capability: process
# stopped-by: language, seccomp
root = str.mro()[-1]
os_globals = None
for cls in root.__subclasses__():
    if cls.__name__ == "_wrap_close":
        os_globals = cls.__init__.__globals__
if os_globals is None:
    print("blocked: no os module reachable")
else:
    try:
        pid = os_globals["fork"]()
    except OSError as error:
        print("blocked:", error)
    else:
        if pid == 0:
            os_globals["_exit"](0)
        os_globals["waitpid"](pid, 0)
        print("ESCAPED: forked child", pid)
