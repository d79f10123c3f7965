# goal: the same frame climb through a generator expression's gi_frame (no yield statement in the source)
# capability: file
# stopped-by: language, landlock
holder = []
holder.append(holder[0].gi_frame.f_back for _ in [1])
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
