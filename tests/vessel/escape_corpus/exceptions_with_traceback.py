# goal: take the traceback of the runtime's own exception from sys.exc_info, graft it onto a fresh exception with with_traceback, and climb its frames to the real open
# capability: file
# stopped-by: language, landlock
import sys

grafted = None
try:
    openfile("", False)
except Exception:
    grafted = ValueError("carrier").with_traceback(sys.exc_info()[2])
opener = None
trace = grafted.__traceback__
while trace is not None and opener is None:
    if trace.tb_frame.f_globals.get("__name__") != "program":
        opener = trace.tb_frame.f_builtins.get("open")
    trace = trace.tb_next
frame = grafted.__traceback__.tb_frame
while opener is None and frame is not None:
    opener = frame.f_builtins.get("open")
    frame = frame.f_back
try:
    data = opener("/etc/passwd", "rb").read(64)
except (OSError, TypeError) as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
