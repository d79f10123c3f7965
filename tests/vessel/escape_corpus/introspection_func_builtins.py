# goal: read a function's __builtins__ attribute (Python 3.10+) and open a host file with the open found there
# capability: file
# stopped-by: language, landlock
def probe():
    return 1


opener = probe.__builtins__.get("open")
if opener is None:
    print("blocked: no open among the builtins")
else:
    try:
        data = opener("/etc/passwd", "rb").read(64)
    except OSError as error:
        print("blocked:", error)
    else:
        print("ESCAPED: read /etc/passwd:", data[:16])
