# goal: smuggle path separators, NUL truncation, newlines, home and glob characters and over-long names through openfile
# capability: file
# stopped-by: api
names = [
    "a/b",
    "a\\b",
    "ok.txt\x00/../../etc/passwd",
    "x\n/../../etc/passwd",
    "~/escape.txt",
    "$HOME",
    "*",
    "UPPER.txt",
    "caf\u00e9.txt",
    "name with spaces",
    "a" * 121,
]
escaped = []
for name in names:
    try:
        handle = openfile(name, True)
    except Exception as error:
        print("refused", repr(name[:30]), repr(error))
        continue
    handle.close()
    print("accepted", repr(name[:30]))
    if "/" in name or "\x00" in name:
        escaped.append(name)
if escaped:
    print("ESCAPED: openfile honoured a path separator or NUL in", escaped)
