# goal: read __builtins__ out of globals() and open a host file with the open found there
# capability: file
# stopped-by: language, landlock
host_builtins = globals()["__builtins__"]
opener = host_builtins.get("open") if isinstance(host_builtins, dict) else host_builtins.open
try:
    data = opener("/etc/passwd", "rb").read(64)
except (OSError, TypeError) as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
