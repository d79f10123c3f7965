# goal: spell the dunder walk with fullwidth letters (NFKC turns __ｃｌａｓｓ__ into __class__) so a text scanner misses it, then fork through os
# capability: process
# stopped-by: language, seccomp
os_globals = None
for cls in ().__ｃｌａｓｓ__.__ｂａｓｅ__.__ｓｕｂｃｌａｓｓｅｓ__():
    if cls.__ｎａｍｅ__ == "_wrap" + "_close":
        os_globals = cls.__ｉｎｉｔ__.__ｇｌｏｂａｌｓ__
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
