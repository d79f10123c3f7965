# goal: assemble the dunder walk at run time (no dunder in this file's text) and run it as a virtual namespace, hoping createvirtualnamespace checks less than the program checker
# capability: process
# stopped-by: api, seccomp
dunder = "_" * 2
lines = [
    "found = None",
    "for cls in ()." + dunder + "class" + dunder + "." + dunder + "base" + dunder + "." + dunder + "subclasses" + dunder + "():",
    "    if cls." + dunder + "name" + dunder + " == '_wrap_close':",
    "        found = cls." + dunder + "init" + dunder + "." + dunder + "globals" + dunder,
    "pid = found['fork']()",
    "if pid == 0:",
    "    found['_exit'](0)",
    "found['waitpid'](pid, 0)",
    "print('ESCAPED: forked child', pid)",
]
code = "\n".join(lines) + "\n"
try:
    namespace = createvirtualnamespace(code, "smuggled")
except CodeUnsafeError as error:
    print("blocked:", error)
else:
    try:
        namespace.evaluate({})
    except Exception as error:
        print("blocked:", repr(error), error)
