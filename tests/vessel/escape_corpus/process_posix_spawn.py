# goal: start a host shell with os.posix_spawn (vfork/clone3 inside glibc rather than fork)
# capability: exec
# stopped-by: language, seccomp, landlock
import os

try:
    pid = os.posix_spawn("/bin/sh", ["sh", "-c", "exit 7"], {})
except OSError as error:
    print("blocked:", error)
else:
    status = os.waitpid(pid, 0)[1]
    if os.waitstatus_to_exitcode(status) == 7:
        print("ESCAPED: a host shell ran")
    else:
        print("blocked: the shell did not run, wait status", status)
