# goal: pass negative sizes, offsets, ports and timeouts that the API must refuse (Repy's Int() minimum of 0), and booleans where numbers go
# capability: object
# stopped-by: api
handle = openfile("negative-args.txt", True)
handle.writeat(b"some bytes", 0)
trials = (
    ("readat negative size", lambda: handle.readat(-1, 0)),
    ("readat negative offset", lambda: handle.readat(1, -1)),
    ("writeat negative offset", lambda: handle.writeat(b"x", -5)),
    ("readat bool size", lambda: handle.readat(True, 0)),
    ("sleep negative", lambda: sleep(-1)),
    ("listen negative port", lambda: listenformessage("127.0.0.1", -1)),
    ("connect negative timeout", lambda: openconnection("127.0.0.1", 1, "127.0.0.1", 1, -1.0)),
    ("openfile create as int", lambda: openfile("negative-args-2.txt", 1)),
)
accepted = []
for label, attempt in trials:
    try:
        attempt()
    except RepyException as error:
        print(label, "->", repr(error))
    except Exception as error:
        accepted.append((label, repr(error)))
    else:
        accepted.append((label, "no error"))
handle.close()
if accepted:
    print("ESCAPED: the API accepted or mishandled invalid arguments:", accepted)
