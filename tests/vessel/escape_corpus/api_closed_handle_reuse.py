# goal: keep using a closed file object after its descriptor number was handed to another open, to read or write through a handle that is not ours
# capability: file
# stopped-by: api
first = openfile("first.txt", True)
first.writeat(b"first file", 0)
first.close()
second = openfile("second.txt", True)
second.writeat(b"second file, opened after the first was closed", 0)
for label, attempt in (
    ("readat", lambda: first.readat(None, 0)),
    ("writeat", lambda: first.writeat(b"overwritten through a closed handle", 0)),
    ("close again", lambda: first.close()),
):
    try:
        result = attempt()
    except Exception as error:
        print(label, "refused:", repr(error))
    else:
        print("ESCAPED: a closed file object still works:", label, result)
second.close()
lock = createlock()
lock.acquire(True)
lock.release()
try:
    lock.release()
except Exception as error:
    print("double release refused:", repr(error))
else:
    print("ESCAPED: a lock released twice")
