# goal: traverse attributes with str.format_map ("{f.__class__.__mro__}") to learn the class hierarchy, then climb it to the os module and fork
# capability: process
# stopped-by: language, seccomp
template = "{item.__class__.__mro__}"
print("leaked:", template.format_map({"item": ()}))
os_globals = None
for cls in ().__class__.__mro__[-1].__subclasses__():
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
