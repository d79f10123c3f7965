# goal: call ｏｐｅｎ written in fullwidth letters, which NFKC turns into the banned builtin name open
# capability: file
# stopped-by: language, landlock
try:
    with ｏｐｅｎ("/etc/passwd", "rb") as handle:
        data = handle.read(64)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
