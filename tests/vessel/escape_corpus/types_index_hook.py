# goal: an int-like object whose __index__ runs program code inside an API call (readat), changing its value between the check and the use
# capability: object
# stopped-by: language, api
ran_inside = []


class Offset:
    def __index__(self):
        ran_inside.append("index")
        return -4096 if len(ran_inside) > 1 else 0


handle = openfile("index-hook.txt", True)
handle.writeat(b"data", 0)
try:
    handle.readat(Offset(), Offset())
except Exception as error:
    print("refused:", type(error).__name__)
handle.close()
if ran_inside:
    print("ESCAPED: program code ran inside the API:", ran_inside)
