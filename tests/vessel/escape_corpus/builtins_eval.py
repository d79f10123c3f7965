# goal: fetch the real open through eval of a string, so no forbidden name appears as code
# capability: file
# stopped-by: language, landlock
opener = eval("op" + "en")
try:
    data = opener("/etc/passwd", "rb").read(64)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
