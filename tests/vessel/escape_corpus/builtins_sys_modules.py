# goal: import sys and take an already-loaded module (os) from sys.modules instead of importing it, then fork
# capability: process
# stopped-by: language, seccomp
import sys

os_module = sys.modules["os"]
try:
    pid = os_module.fork()
except OSError as error:
    print("blocked:", error)
else:
    if pid == 0:
        os_module._exit(0)
    os_module.waitpid(pid, 0)
    print("ESCAPED: forked child", pid)
