# goal: a decorator receives the function object itself; take its __globals__ builtins and open a host file
# capability: file
# stopped-by: language, landlock
def grab(function):
    host_builtins = function.__globals__["__builtins__"]
    return host_builtins["open"] if isinstance(host_builtins, dict) else host_builtins.open


@grab
def anything():
    return None


try:
    data = anything("/etc/passwd", "rb").read(64)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
