# goal: evaluate len.__self__ inside an f-string and keep the object with a walrus, so the "formatting" hands over the host builtins module
# capability: file
# stopped-by: language, landlock
print(f"{(host := len.__self__)!r}")
try:
    data = host.open("/etc/passwd", "rb").read(64)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
