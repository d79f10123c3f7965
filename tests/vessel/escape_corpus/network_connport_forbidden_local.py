# goal: open a TCP connection from a local port outside the connport allotment (to the vessel's own listener on an allowed port)
# capability: socket
# stopped-by: api
# harness: the allotment grants at least one connport, so the attack has a listener to reach
limits = getresources()[0]
allowed = sorted(limits["connport"])
forbidden = 50000
while forbidden in limits["connport"]:
    forbidden += 1
server = None
destination = 9
if allowed:
    destination = allowed[0]
    server = listenforconnection("127.0.0.1", destination)
try:
    sock = openconnection("127.0.0.1", destination, "127.0.0.1", forbidden, 2.0)
except ResourceForbiddenError as error:
    print("blocked:", error)
except Exception as error:
    print("not refused by the port check:", repr(error), error)
else:
    print("ESCAPED: connected from forbidden local port", forbidden)
    sock.close()
if server is not None:
    server.close()
