# goal: load the posix module by a name computed at run time through importlib, then fork
# capability: process
# stopped-by: language, seccomp
import importlib

posix = importlib.import_module("po" + "six")
try:
    pid = posix.fork()
except OSError as error:
    print("blocked:", error)
else:
    if pid == 0:
        posix._exit(0)
    posix.waitpid(pid, 0)
    print("ESCAPED: forked child", pid)
