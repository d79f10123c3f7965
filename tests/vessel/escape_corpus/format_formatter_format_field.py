# goal: subclass string.Formatter and override format_field so vformat hands over the traversed object itself (the os globals), then fork with them
# capability: process
# stopped-by: language, seccomp
import string

captured = []


class Grabber(string.Formatter):
    def format_field(self, value, format_spec):
        captured.append(value)
        return ""


for cls in ().__class__.__base__.__subclasses__():
    if cls.__name__ == "_wrap_close":
        Grabber().vformat("{0.__init__.__globals__}", (cls,), {})
if not captured:
    print("blocked: no os globals captured")
else:
    os_globals = captured[-1]
    try:
        pid = os_globals["fork"]()
    except OSError as error:
        print("blocked:", error)
    else:
        if pid == 0:
            os_globals["_exit"](0)
        os_globals["waitpid"](pid, 0)
        print("ESCAPED: forked child", pid)
