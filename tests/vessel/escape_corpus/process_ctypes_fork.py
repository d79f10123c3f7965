# goal: call the C library's fork() through ctypes, going around Python's os module
# capability: process
# stopped-by: language, seccomp
import ctypes

try:
    libc = ctypes.CDLL(None, use_errno=True)
except OSError as error:
    print("blocked: no libc through ctypes:", error)
else:
    pid = libc.fork()
    if pid == 0:
        libc._exit(0)
    if pid > 0:
        libc.waitpid(pid, None, 0)
        print("ESCAPED: forked child", pid, "through ctypes")
    else:
        print("blocked: fork failed with errno", ctypes.get_errno())
