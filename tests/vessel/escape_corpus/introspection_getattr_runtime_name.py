# goal: use getattr with attribute names assembled at run time (no dunder in the source text) to walk to os and fork
# capability: process
# stopped-by: language, seccomp
def dunder(word):
    return "_" * 2 + word + "_" * 2


root = getattr(getattr((), dunder("class")), dunder("base"))
os_globals = None
for cls in getattr(root, dunder("subclasses"))():
    if getattr(cls, dunder("name")) == "_wrap" + "_close":
        os_globals = getattr(getattr(cls, dunder("init")), dunder("globals"))
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
