# goal: call __import__("os") directly and fork
# capability: process
# stopped-by: language, seccomp
os_module = __import__("os")
try:
    pid = os_module.fork()
except OSError as error:
    print("blocked:", error)
else:
    if pid == 0:
        os_module._exit(0)
    os_module.waitpid(pid, 0)
    print("ESCAPED: forked child", pid)
