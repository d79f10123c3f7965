# goal: send a UDP datagram from a local port outside the messport allotment (Landlock does not cover UDP, so the API and the broker must)
# capability: socket
# stopped-by: api
# harness: the allotment grants at least one messport, so the attack has a receiver
limits = getresources()[0]
allowed = sorted(limits["messport"])
forbidden = 50000
while forbidden in limits["messport"]:
    forbidden += 1
receiver = None
destination = 9
if allowed:
    destination = allowed[0]
    receiver = listenformessage("127.0.0.1", destination)
try:
    sent = sendmessage("127.0.0.1", destination, b"from a forbidden port", "127.0.0.1", forbidden)
except ResourceForbiddenError as error:
    print("blocked:", error)
except Exception as error:
    print("not refused by the port check:", repr(error), error)
else:
    print("ESCAPED: sent", sent, "bytes from forbidden local port", forbidden)
if receiver is not None:
    receiver.close()
