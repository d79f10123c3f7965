# goal: an API error's traceback runs through the API wrapper's own frame; follow tb_next into it and open a host file with that frame's real builtins
# capability: file
# stopped-by: language, landlock
opener = None
try:
    openfile("../outside.txt", False)
except Exception as error:
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_globals.get("__name__") != "program":
            opener = trace.tb_frame.f_builtins.get("open")
        trace = trace.tb_next
if opener is None:
    print("blocked: no API frame in the traceback")
else:
    try:
        data = opener("/etc/passwd", "rb").read(64)
    except OSError as error:
        print("blocked:", error)
    else:
        print("ESCAPED: read /etc/passwd:", data[:16])
