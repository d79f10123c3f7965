# goal: open the vessel directory itself or hidden names ("", ".", ".hidden", "..."), which Repy's name rules forbid
# capability: file
# stopped-by: api
opened = []
for name in ("", ".", ".hidden", "...", "-", "_"):
    try:
        handle = openfile(name, True)
    except Exception as error:
        print("refused", repr(name), repr(error))
        continue
    opened.append(name)
    handle.close()
    if name not in ("-", "_"):
        removefile(name)
unexpected = [name for name in opened if name in ("", ".")]
if unexpected:
    print("ESCAPED: opened the vessel directory itself through", unexpected)
print("names accepted:", opened)
