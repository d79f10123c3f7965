# goal: use str.format field traversal ("{0.__module__}") to learn which host module a builtin comes from, then import that module and open a host file
# capability: file
# stopped-by: language, landlock
template = "{0.__module__}"
module_name = template.format(len)
print("leaked module name:", module_name)
host_builtins = __import__(module_name)
try:
    data = host_builtins.open("/etc/passwd", "rb").read(64)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
