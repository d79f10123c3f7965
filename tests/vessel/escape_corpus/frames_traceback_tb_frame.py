# goal: catch an exception and climb __traceback__.tb_frame.f_back to the runtime's frames, whose f_builtins hold the real open
# capability: file
# stopped-by: language, landlock
frame = None
try:
    ratio = 1 / 0
except ZeroDivisionError as error:
    frame = error.__traceback__.tb_frame
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
