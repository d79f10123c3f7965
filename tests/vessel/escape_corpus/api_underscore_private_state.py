# goal: with names of one leading underscore allowed (as in the original), read the private state of API objects under the names our own classes or CPython would use, and turn it into a host file read
# capability: file
# stopped-by: api, landlock
handle = openfile("mine.txt", True)
lock = createlock()
context = SafeDict()
namespace = createvirtualnamespace("x = 1\n", "ns")
attempts = 0
for label, reach in (
    ("file._fd", lambda: handle._fd), ("file._path", lambda: handle._path), ("file._lock", lambda: handle._lock),
    ("lock._lock", lambda: lock._lock), ("lock._owner", lambda: lock._owner),
    ("SafeDict._data", lambda: context._data), ("namespace._code", lambda: namespace._code),
    ("namespace._ctx", lambda: namespace._ctx), ("_context._names", lambda: _context._names),
    ("exception._message", lambda: RepyArgumentError("x")._message),
):
    attempts += 1
    try:
        value = reach()
    except AttributeError:
        print("refused", label)
        continue
    print("ESCAPED? found", label, type(value))
    if isinstance(value, dict) and "open" in value:
        print("ESCAPED: host builtins under", label)
print("blocked: no private state after", attempts, "attempts")
