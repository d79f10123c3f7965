# goal: pass str subclasses whose methods (dunder and ordinary) run program code into the API, to change the name between its check and its use
# capability: object
# stopped-by: api
ran_inside = []


class Shifty(str):
    def flip(self, label):
        ran_inside.append(label)
        return "../../../../etc/passwd" if len(ran_inside) > 1 else "innocent.txt"

    def __str__(self):
        return self.flip("str")

    def __eq__(self, other):
        self.flip("eq")
        return True

    def __ne__(self, other):
        self.flip("ne")
        return False

    def __hash__(self):
        self.flip("hash")
        return 0

    def __len__(self):
        self.flip("len")
        return 12

    def __iter__(self):
        return iter(self.flip("iter"))

    def __contains__(self, item):
        self.flip("contains")
        return False

    def __getitem__(self, index):
        return self.flip("getitem")[index]

    def lower(self):
        return self.flip("lower")

    def strip(self, chars=None):
        return self.flip("strip")

    def startswith(self, prefix, *args):
        self.flip("startswith")
        return False

    def isascii(self):
        self.flip("isascii")
        return True

    def replace(self, old, new, count=-1):
        return self.flip("replace")


for attempt in (
    lambda: openfile(Shifty("innocent.txt"), True),
    lambda: removefile(Shifty("innocent.txt")),
    lambda: log(Shifty("logged text"), "\n"),
    lambda: gethostbyname(Shifty("localhost")),
    lambda: listenformessage(Shifty("127.0.0.1"), 1),
    lambda: createvirtualnamespace(Shifty("x = 1"), Shifty("name")),
):
    try:
        result = attempt()
    except Exception as error:
        print("refused:", repr(error))
    else:
        print("accepted:", result)
# log() is documented to call str() on its arguments; that one call is not an escape.
inside = [label for label in ran_inside if label != "str"]
if inside:
    print("ESCAPED: program code ran inside the API:", inside)
