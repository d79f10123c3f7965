# goal: import os and run a host shell with os.system
# capability: exec
# stopped-by: language, seccomp, landlock
import os

status = os.system("exit 7")
if status != -1 and os.waitstatus_to_exitcode(status) == 7:
    print("ESCAPED: a host shell ran")
else:
    print("blocked: os.system returned", status)
