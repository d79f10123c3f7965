# goal: from os import fork (and friends) without naming the os module, then fork
# capability: process
# stopped-by: language, seccomp
from os import _exit, fork, waitpid

try:
    pid = fork()
except OSError as error:
    print("blocked:", error)
else:
    if pid == 0:
        _exit(0)
    waitpid(pid, 0)
    print("ESCAPED: forked child", pid)
