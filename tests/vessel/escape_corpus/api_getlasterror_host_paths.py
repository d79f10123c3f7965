# goal: read the traceback text getlasterror() returns after an API error and look for host paths or runtime frames in it
# capability: object
# stopped-by: api
text = None
try:
    openfile("../../etc/passwd", False)
except Exception:
    text = getlasterror()
print("getlasterror():", repr(text))
markers = ("site-packages", "seattle/vessel", "/usr/lib/python", ".venv", "runtime.py", "checks.py")
leaked = [marker for marker in markers if text is not None and marker in text]
if leaked:
    print("ESCAPED: the traceback shows host internals:", leaked)
