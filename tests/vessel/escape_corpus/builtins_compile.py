# goal: compile unchecked source into a code object and wrap it in a new function through type(a function)
# capability: file
# stopped-by: language, landlock
def template():
    return None


code = compile("result = open('/etc/passwd', 'rb').read(64)", "<smuggled>", "exec")
scope = {}
runner = type(template)(code, scope)
try:
    runner()
except OSError as error:
    print("blocked:", error)
except NameError as error:
    print("blocked:", error)
else:
    print("ESCAPED: read /etc/passwd:", scope["result"][:16])
