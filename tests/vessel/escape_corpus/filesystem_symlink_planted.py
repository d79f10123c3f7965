# goal: open symbolic links planted in the vessel directory that point at /etc/passwd and at /etc (the program cannot create links; the harness plants them)
# capability: file
# stopped-by: api, landlock
# harness: before the run, create in the vessel directory the symlinks planted-link -> /etc/passwd and planted-dir -> /etc
for name in ("planted-link", "planted-dir"):
    try:
        handle = openfile(name, False)
    except Exception as error:
        print("refused", name, repr(error))
        continue
    data = handle.readat(64, 0)
    handle.close()
    if data:
        print("ESCAPED: read through the planted link", name, data[:16])
print("listfiles:", listfiles())
