# goal: use the Repy V1 names (waitforconn, recvmess, sendmess, openconn) with ports outside the allotment
# capability: socket
# stopped-by: api
limits = getresources()[0]
forbidden = 50000
while forbidden in limits["connport"] or forbidden in limits["messport"]:
    forbidden += 1


def on_event(*args):
    return None


for label, attempt in (
    ("waitforconn", lambda: waitforconn("127.0.0.1", forbidden, on_event)),
    ("recvmess", lambda: recvmess("127.0.0.1", forbidden, on_event)),
    ("sendmess", lambda: sendmess("127.0.0.1", 9, "x", "127.0.0.1", forbidden)),
    ("openconn", lambda: openconn("127.0.0.1", 9, "127.0.0.1", forbidden, 1.0)),
):
    try:
        result = attempt()
    except ResourceForbiddenError:
        print("blocked", label)
    except Exception as error:
        print("not refused by the port check:", label, repr(error))
    else:
        print("ESCAPED:", label, "accepted forbidden port", forbidden)
        if label in ("waitforconn", "recvmess"):
            stopcomm(result)
