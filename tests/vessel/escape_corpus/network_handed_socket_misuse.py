# goal: reach the real socket behind a UDPServerSocket (gc) and point it somewhere the broker would refuse: connect it to a port outside the allotment, re-bind it, make it listen, switch on broadcast, send to the broadcast address
# capability: socket
# stopped-by: language, seccomp
import gc
import socket

limits = getresources()[0]
port = sorted(limits["messport"])[0]
forbidden = 50000
while forbidden in limits["messport"] or forbidden in limits["connport"]:
    forbidden += 1
listener = listenformessage("127.0.0.1", port)
found = [item for item in gc.get_objects() if isinstance(item, socket.socket) and item.family == socket.AF_INET]
if not found:
    print("blocked: no socket found")
for sock in found:
    attempts = (
        ("connect", sock.connect, ("127.0.0.1", forbidden)),
        ("bind", sock.bind, ("127.0.0.1", forbidden)),
        ("listen", sock.listen, 1),
        ("setsockopt", lambda flag: sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, flag), 1),  # noqa: B023
        ("broadcast", lambda data: sock.sendto(data, ("255.255.255.255", port)), b"x"),  # noqa: B023
    )
    for name, attempt, argument in attempts:
        try:
            attempt(argument)
        except OSError as error:
            print("blocked:", name, error)
        else:
            print("ESCAPED:", name, "worked on the vessel's own socket")
