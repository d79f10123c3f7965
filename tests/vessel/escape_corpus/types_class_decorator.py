# goal: a class decorator receives the class object; climb its __mro__ to object's subclasses, the os module and fork
# capability: process
# stopped-by: language, seccomp
def grab(cls):
    for candidate in cls.__mro__[-1].__subclasses__():
        if candidate.__name__ == "_wrap_close":
            return candidate.__init__.__globals__
    return None


@grab
class Anything:
    pass


os_globals = Anything
try:
    pid = os_globals["fork"]()
except OSError as error:
    print("blocked:", error)
else:
    if pid == 0:
        os_globals["_exit"](0)
    os_globals["waitpid"](pid, 0)
    print("ESCAPED: forked child", pid)
