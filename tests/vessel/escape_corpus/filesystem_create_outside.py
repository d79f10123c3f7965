# goal: create and write a file outside the vessel directory (in /tmp and in the filesystem root) by absolute path
# capability: file
# stopped-by: api, landlock
for name in ("/tmp/seattle-vessel-escape-probe.txt", "/seattle-vessel-escape-probe.txt"):
    try:
        handle = openfile(name, True)
    except Exception as error:
        print("refused", repr(name), repr(error))
        continue
    handle.writeat(b"written by a vessel", 0)
    handle.close()
    print("ESCAPED: created", name)
