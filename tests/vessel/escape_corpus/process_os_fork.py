# goal: import os and fork a child process
# capability: process
# stopped-by: language, seccomp
import os

try:
    pid = os.fork()
except OSError as error:
    print("blocked:", error)
else:
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    print("ESCAPED: forked child", pid)
