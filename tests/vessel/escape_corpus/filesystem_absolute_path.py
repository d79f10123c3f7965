# goal: open host files by absolute path (/etc/passwd, /etc/hostname, /proc/self/environ, //etc/passwd)
# capability: file
# stopped-by: api, landlock
for name in ("/etc/passwd", "/etc/hostname", "/proc/self/environ", "//etc/passwd", "/"):
    try:
        handle = openfile(name, False)
    except Exception as error:
        print("refused", repr(name), repr(error))
        continue
    try:
        data = handle.readat(64, 0)
    finally:
        handle.close()
    if data:
        print("ESCAPED: read", repr(name), data[:16])
