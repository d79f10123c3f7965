# goal: a __set_name__ hook runs during class creation with the owner class; climb from the owner to os and fork
# capability: process
# stopped-by: language, seccomp
captured = []


class Hook:
    def __set_name__(self, owner, name):
        captured.append(owner.__mro__[-1])


class Owner:
    attribute = Hook()


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
