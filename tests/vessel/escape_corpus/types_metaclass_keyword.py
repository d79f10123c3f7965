# goal: define a class with metaclass= so program code runs at class creation with the class namespace, then climb to os and fork
# capability: process
# stopped-by: language, seccomp
captured = []


class Meta(type):
    def __new__(mcs, name, bases, namespace):
        captured.append(mcs.__mro__[-1])
        return super().__new__(mcs, name, bases, namespace)


class Victim(metaclass=Meta):
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
