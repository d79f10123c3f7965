# goal: pass huge sizes, offsets, ports, timeouts and names to the API, hoping an OverflowError or OSError escapes as a host exception
# capability: object
# stopped-by: api
handle = openfile("huge-args.txt", True)
local_port = sorted(getresources()[0]["connport"] or {1})[0]
trials = (
    ("readat huge size", lambda: handle.readat(10**30, 0)),
    ("readat huge offset", lambda: handle.readat(None, 10**30)),
    ("writeat 2**63", lambda: handle.writeat(b"x", 2**63)),
    ("openfile million-char name", lambda: openfile("a" * 10**6, True)),
    ("sleep 10**400", lambda: sleep(10**400)),
    ("sleep inf", lambda: sleep(float("inf"))),
    ("sleep nan", lambda: sleep(float("nan"))),
    ("listen port 2**64", lambda: listenformessage("127.0.0.1", 2**64)),
    ("connect timeout 10**400", lambda: openconnection("127.0.0.1", 1, "127.0.0.1", local_port, 10**400)),
    ("connect port 70000", lambda: openconnection("127.0.0.1", 1, "127.0.0.1", 70000, 1.0)),
    ("send megabyte datagram", lambda: sendmessage("127.0.0.1", 1, b"x" * 10**6, "127.0.0.1", 1)),
    ("resolve long name", lambda: gethostbyname("a" * 100000)),
)
host_exceptions = []
for label, attempt in trials:
    try:
        attempt()
    except RepyException as error:
        print(label, "->", repr(error))
    except Exception as error:
        host_exceptions.append((label, repr(error)))
    else:
        print(label, "-> accepted")
handle.close()
if host_exceptions:
    print("ESCAPED: host exceptions crossed the API boundary:", host_exceptions)
