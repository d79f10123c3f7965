# goal: read the builtins through a program function's __globals__ and open a host file with them
# capability: file
# stopped-by: language, landlock
def probe():
    return 1


host_builtins = probe.__globals__["__builtins__"]
opener = host_builtins.get("open") if isinstance(host_builtins, dict) else host_builtins.open
if opener is None:
    print("blocked: no open among the builtins")
else:
    try:
        data = opener("/etc/passwd", "rb").read(64)
    except OSError as error:
        print("blocked:", error)
    else:
        print("ESCAPED: read /etc/passwd:", data[:16])
