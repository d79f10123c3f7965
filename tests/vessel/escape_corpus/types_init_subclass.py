# goal: an __init_subclass__ hook runs program code whenever a subclass is made; use it to capture object and fork through os
# capability: process
# stopped-by: language, seccomp
captured = []


class Base:
    def __init_subclass__(cls):
        captured.append(cls.__mro__[-1])


class Child(Base):
    pass


os_globals = None
for cls in captured[0].__subclasses__():
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
