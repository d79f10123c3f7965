# goal: import os and run a host shell with os.system
# capability: exec
# stopped-by: language, seccomp, landlock
import os

status = os.system("exit 7")
if status != -1 and os.waitstatus_to_exitcode(status) == 7:
    print("ESCAPED: a host shell ran")
else:
    # 127 << 8 is system()'s "no shell could be started": the clone or exec behind it was refused.
    print("blocked: os.system returned", status, "(no shell could be started)" if status == 127 << 8 else "")
