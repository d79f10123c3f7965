# goal: drive a coroutine by hand and read cr_frame.f_back from inside it to climb to a frame with the real builtins
# capability: file
# stopped-by: language, landlock
async def climber():
    return holder[0].cr_frame.f_back


holder = [climber()]
frame = None
try:
    holder[0].send(None)
except StopIteration as stop:
    frame = stop.value
opener = None
while frame is not None and opener is None:
    opener = frame.f_builtins.get("open")
    frame = frame.f_back
if opener is None:
    print("blocked: no frame with the real open")
else:
    try:
        data = opener("/etc/passwd", "rb").read(64)
    except OSError as error:
        print("blocked:", error)
    else:
        print("ESCAPED: read /etc/passwd:", data[:16])
