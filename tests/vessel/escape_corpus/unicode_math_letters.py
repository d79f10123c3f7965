# goal: spell __builtins__ with mathematical bold letters, which NFKC folds to ASCII, to reach a function's builtins and open a host file
# capability: file
# stopped-by: language, landlock
def probe():
    return None


opener = probe.__𝐛𝐮𝐢𝐥𝐭𝐢𝐧𝐬__.get("open")
try:
    data = opener("/etc/passwd", "rb").read(64)
except (OSError, TypeError) as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", data[:16])
