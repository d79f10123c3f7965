# goal: pass a non-class with __mro_entries__ as a starred class base, so program code picks the bases; climb from there to os and fork
# capability: process
# stopped-by: language, seccomp
captured = []


class Entry:
    def __mro_entries__(self, bases):
        captured.append(bases)
        return (object,)


entries = [Entry()]


class Made(*entries):
    pass


os_globals = None
for cls in Made.__base__.__subclasses__():
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
