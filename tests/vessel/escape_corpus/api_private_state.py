# goal: rewrite a file object's private state (_path, _fd, _name, ...) so that its next readat reads a host file
# capability: file
# stopped-by: language, api, landlock
handle = openfile("private-state.txt", True)
handle.writeat(b"vessel data", 0)
for name, value in (("_path", "/etc/passwd"), ("_name", "../../../../etc/passwd"), ("_filename", "/etc/passwd")):
    try:
        setattr(handle, name, value)
    except Exception as error:
        print("refused", name, type(error).__name__)
try:
    handle._fd = 0
except Exception as error:
    print("refused _fd", type(error).__name__)
data = handle.readat(64, 0)
if data.startswith(b"root:"):
    print("ESCAPED: the file object now reads /etc/passwd:", data[:16])
else:
    print("blocked: still reads", data[:16])
