# goal: learn a loadable module's name from ImportError.name of a failed submodule import, import it and fork
# capability: process
# stopped-by: language, seccomp
module_name = None
try:
    import os.no_such_submodule  # noqa: F401
except ImportError as error:
    module_name = error.name.split(".")[0]
os_module = __import__(module_name)
try:
    pid = os_module.fork()
except OSError as error:
    print("blocked:", error)
else:
    if pid == 0:
        os_module._exit(0)
    os_module.waitpid(pid, 0)
    print("ESCAPED: forked child", pid)
