# goal: make API calls fail in many ways and look for host objects (anything but plain text and numbers) in the exceptions' args
# capability: object
# stopped-by: api
trials = [
    ("openfile dotdot", lambda: openfile("../escape.txt", False)),
    ("openfile empty", lambda: openfile("", False)),
    ("openfile missing", lambda: openfile("no-such-file.txt", False)),
    ("openfile int name", lambda: openfile(12, True)),
    ("openfile long name", lambda: openfile("x" * 500, True)),
    ("removefile missing", lambda: removefile("no-such-file.txt")),
    ("sleep negative", lambda: sleep(-1)),
    ("release unheld lock", lambda: createlock().release()),
    ("createthread non-callable", lambda: createthread(5)),
    ("listen on port 1", lambda: listenforconnection("127.0.0.1", 1)),
    ("connect bad ip", lambda: openconnection("not an ip", 1, "127.0.0.1", 1, 1.0)),
    ("send oversized datagram", lambda: sendmessage("127.0.0.1", 1, b"x" * 10000, "127.0.0.1", 1)),
    ("resolve empty name", lambda: gethostbyname("")),
    ("too many arguments", lambda: getruntime(1, 2, 3)),
]
leaks = []
for label, attempt in trials:
    try:
        attempt()
    except Exception as error:
        for item in error.args:
            if type(item) not in (str, int, float):
                leaks.append((label, type(item)))
        print(label, "->", repr(error))
    else:
        print(label, "-> no error")
if leaks:
    print("ESCAPED: host objects in API exception args:", leaks)
