# goal: re-enter the API from __hash__/__eq__ of a key or argument while an API call is running (its bookkeeping half done)
# capability: object
# stopped-by: api
reentered = []
inside_api = []


class Reentrant(str):
    def __hash__(self):
        if inside_api:
            reentered.append("hash")
            try:
                openfile("reentered.txt", True).close()
                removefile("reentered.txt")
            except Exception as error:
                reentered.append(repr(error))
        return 7

    def __eq__(self, other):
        if inside_api:
            reentered.append("eq")
        return True


key = Reentrant("shared")
context = {key: 1}
namespace = createvirtualnamespace("y = 1", "ns")
for attempt in (
    lambda: openfile(key, True),
    lambda: namespace.evaluate(context),
    lambda: SafeDict(context),
    lambda: SafeDict()[key],
):
    inside_api.append(True)
    try:
        attempt()
    except Exception as error:
        print("refused:", repr(error))
    else:
        print("accepted")
    inside_api.clear()
if reentered:
    print("ESCAPED: the API ran program code that re-entered it:", reentered)
