# goal: prove the vessel may signal its supervisor (kill with signal 0), the first step to SIGSTOP its nanny and escape CPU throttling
# capability: process
# stopped-by: language, seccomp, landlock
import os

try:
    os.kill(os.getppid(), 0)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: the vessel may send signals to its supervisor, pid", os.getppid())
