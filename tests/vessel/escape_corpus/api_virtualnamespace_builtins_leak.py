# goal: while a virtual namespace runs, iterate its context from a callback to find the builtins entry the runtime put there, and use it if it is the host's
# capability: file
# stopped-by: api, landlock
context = SafeDict()
found = []


def peek():
    for key in context:
        value = context[key]
        if type(value) is dict and "open" in value:
            found.append(value["open"])
        elif type(value) is dict:
            print("found a builtins dict without open; keys:", len(value))


context["peek"] = peek
namespace = createvirtualnamespace("peek()\n", "peeker")
namespace.evaluate(context)
print("keys after evaluate:", sorted(context.keys()))
if not found:
    print("blocked: no host builtins in the context")
else:
    try:
        data = found[0]("/etc/passwd", "rb").read(64)
    except OSError as error:
        print("blocked:", error)
    else:
        print("ESCAPED: read /etc/passwd:", data[:16])
