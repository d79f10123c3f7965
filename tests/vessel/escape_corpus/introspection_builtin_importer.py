# goal: find BuiltinImporter among object.__subclasses__() and load the posix module with it to fork
# capability: process
# stopped-by: language, seccomp
importers = [cls for cls in object.__subclasses__() if cls.__name__ == "BuiltinImporter"]
if not importers:
    print("blocked: BuiltinImporter not found")
else:
    posix = importers[0].load_module("posix")
    try:
        pid = posix.fork()
    except OSError as error:
        print("blocked:", error)
    else:
        if pid == 0:
            posix._exit(0)
        posix.waitpid(pid, 0)
        print("ESCAPED: forked child", pid)
