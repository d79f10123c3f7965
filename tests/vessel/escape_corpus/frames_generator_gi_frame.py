# goal: a running generator's gi_frame.f_back is its caller's frame; climb f_back to a frame whose f_builtins hold the real open
# capability: file
# stopped-by: language, landlock
def climber():
    yield holder[0].gi_frame.f_back


holder = [climber()]
frame = next(holder[0])
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
