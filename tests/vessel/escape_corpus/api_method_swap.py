# goal: swap methods between API objects (a file's readat onto another file, a file's close onto a lock) to confuse whose state a method uses
# capability: object
# stopped-by: api
first = openfile("swap-first.txt", True)
second = openfile("swap-second.txt", True)
second.writeat(b"second", 0)
lock = createlock()
changed = []
try:
    first.readat = second.readat
    changed.append("readat")
except Exception as error:
    print("refused replacing readat:", repr(error))
try:
    lock.release = first.close
    changed.append("release")
except Exception as error:
    print("refused replacing release:", repr(error))
try:
    first.extra = 1
    changed.append("extra")
except Exception as error:
    print("refused a new attribute:", repr(error))
try:
    del first.close
    changed.append("del close")
except Exception as error:
    print("refused deleting close:", repr(error))
first.close()
second.close()
if changed:
    print("ESCAPED: API objects accepted changes:", changed)
