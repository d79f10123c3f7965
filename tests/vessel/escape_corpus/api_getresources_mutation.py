# goal: raise the filesopened limit by editing the dict getresources() returns, then open more files than the allotment allows
# capability: file
# stopped-by: api
limits, usage, stoptimes = getresources()
allowed = int(limits["filesopened"])
had_port_one = 1 in limits["connport"]
limits["filesopened"] = allowed + 10
limits["connport"].add(1)
again = getresources()[0]
if again["filesopened"] != allowed or (1 in again["connport"] and not had_port_one):
    print("ESCAPED: getresources handed out its live limits")
handles = []
if allowed > 200:
    print("allotment too large for this attack:", allowed)
else:
    try:
        for index in range(allowed + 1):
            handles.append(openfile("many-" + str(index) + ".txt", True))
    except ResourceExhaustedError as error:
        print("blocked after", len(handles), "files:", error)
    if len(handles) > allowed:
        print("ESCAPED: opened", len(handles), "files with an allotment of", allowed)
for index, handle in enumerate(handles):
    handle.close()
    removefile("many-" + str(index) + ".txt")
