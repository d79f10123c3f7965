# goal: leave the vessel directory with .. in file names, to read a host file or plant a file next to the vessel
# capability: file
# stopped-by: api, landlock
for name in ("..", "../escape.txt", "../../../../etc/passwd", "./../../../../etc/passwd", "sub/../../../../etc/passwd"):
    try:
        handle = openfile(name, False)
    except Exception as error:
        print("refused", repr(name), repr(error))
        continue
    data = handle.readat(64, 0)
    handle.close()
    if data:
        print("ESCAPED: read", repr(name), data[:16])
try:
    planted = openfile("../planted-by-vessel.txt", True)
except Exception as error:
    print("refused creating ../planted-by-vessel.txt:", repr(error))
else:
    planted.writeat(b"written outside the vessel", 0)
    planted.close()
    print("ESCAPED: created a file outside the vessel directory")
