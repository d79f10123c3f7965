# goal: write the second underscore of each dunder as a fullwidth low line (U+FF3F), which NFKC folds to "_", to read len.__self__
# capability: file
# stopped-by: language, landlock
host_builtins = len._＿self_＿
try:
    data = host_builtins.open("/etc/passwd", "rb").read(64)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
