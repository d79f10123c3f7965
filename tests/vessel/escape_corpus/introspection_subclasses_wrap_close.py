# goal: walk ().__class__.__base__.__subclasses__() to os._wrap_close and fork through the os globals of its __init__
# capability: process
# stopped-by: language, seccomp
os_globals = None
for cls in ().__class__.__base__.__subclasses__():
    if cls.__name__ == "_wrap_close":
        os_globals = cls.__init__.__globals__
        break
if os_globals is None:
    print("blocked: os._wrap_close not found")
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
