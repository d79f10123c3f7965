# goal: string.Formatter().get_field returns the object a field names, not its text: fetch len.__self__ (the host builtins module) and open a host file
# capability: file
# stopped-by: language, landlock
import string

host_builtins, _ = string.Formatter().get_field("0.__self__", (len,), {})
try:
    data = host_builtins.open("/etc/passwd", "rb").read(64)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
