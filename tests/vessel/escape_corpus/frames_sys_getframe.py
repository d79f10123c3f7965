# goal: import sys, climb sys._getframe() to the vessel runtime's frames and take the os module from their globals to fork
# capability: process
# stopped-by: language, seccomp
import sys

frame = sys._getframe()
os_module = None
while frame is not None and os_module is None:
    os_module = frame.f_globals.get("os")
    frame = frame.f_back
if os_module is None:
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
