# goal: drive an async generator by hand and read ag_frame.f_back from inside it to climb to a frame with the real builtins
# capability: file
# stopped-by: language, landlock
async def climber():
    yield holder[0].ag_frame.f_back


holder = [climber()]
frame = None
try:
    holder[0].asend(None).send(None)
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
