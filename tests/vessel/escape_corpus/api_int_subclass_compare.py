# goal: pass int subclasses whose comparison methods lie (a negative number that is never "< 0") as offsets, sizes, ports and timeouts
# capability: object
# stopped-by: api
ran_inside = []


class Liar(int):
    def __lt__(self, other):
        ran_inside.append("lt")
        return False

    def __le__(self, other):
        ran_inside.append("le")
        return False

    def __gt__(self, other):
        ran_inside.append("gt")
        return False

    def __ge__(self, other):
        ran_inside.append("ge")
        return True

    def __eq__(self, other):
        ran_inside.append("eq")
        return False

    def __hash__(self):
        ran_inside.append("hash")
        return 0

    def __bool__(self):
        ran_inside.append("bool")
        return True


handle = openfile("int-subclass.txt", True)
handle.writeat(b"0123456789", 0)
for attempt in (
    lambda: handle.readat(Liar(-5), 0),
    lambda: handle.readat(4, Liar(-4096)),
    lambda: handle.writeat(b"x", Liar(-1)),
    lambda: sleep(Liar(-1)),
    lambda: listenformessage("127.0.0.1", Liar(-1)),
    lambda: openconnection("127.0.0.1", Liar(70000), "127.0.0.1", Liar(-1), Liar(-1)),
):
    try:
        result = attempt()
    except Exception as error:
        print("refused:", repr(error))
    else:
        print("accepted:", result)
handle.close()
if ran_inside:
    print("ESCAPED: program code ran inside the API:", ran_inside)
