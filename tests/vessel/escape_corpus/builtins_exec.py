# goal: run unchecked source text with exec (the text reads a host file)
# capability: file
# stopped-by: language, landlock
scope = {}
exec("try:\n    data = open('/etc/passwd', 'rb').read(64)\nexcept OSError as error:\n    data = error\n", scope)
if isinstance(scope["data"], bytes):
    print("ESCAPED: read /etc/passwd:", scope["data"][:16])
else:
    print("blocked:", scope["data"])
