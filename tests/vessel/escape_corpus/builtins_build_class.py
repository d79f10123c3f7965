# goal: call __build_class__ directly with a metaclass keyword of the program's choosing, which receives the raw class namespace; use it to reach os and fork
# capability: process
# stopped-by: language, seccomp
captured = []


def body():
    return None


def hook(name, bases, namespace):
    captured.append(namespace)
    return object


__build_class__(body, "Smuggled", metaclass=hook)
os_globals = None
for cls in object.__subclasses__():
    if cls.__name__ == "_wrap_close":
        os_globals = cls.__init__.__globals__
try:
    pid = os_globals["fork"]()
except OSError as error:
    print("blocked:", error)
else:
    if pid == 0:
        os_globals["_exit"](0)
    os_globals["waitpid"](pid, 0)
    print("ESCAPED: forked child", pid)
