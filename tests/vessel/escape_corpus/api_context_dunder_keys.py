# goal: reach the program's real globals dict through _context with keys built at run time ('__builtins__', '__name__'), read or replace the builtins, and use a host builtin found there
# capability: file
# stopped-by: api, landlock
dunder = "_" + "_" + "builtins" + "_" + "_"
found = []
for key in _context.keys():  # noqa: SIM118 - the method is what is tested
    if "_" + "_" in key:
        found.append(key)
print("dunder keys listed:", found)
print("dunder key present:", dunder in _context, _context.get(dunder))
try:
    value = _context[dunder]
    found.append(value)
except KeyError:
    print("blocked: reading", dunder, "is refused")
try:
    _context[dunder] = {"open": print}
    print("wrote the builtins key")
except ContextUnsafeError as error:
    print("refused:", error)
try:
    _context.update({dunder: {}})
except ContextUnsafeError as error:
    print("refused update:", error)
for value in _context.values():
    if isinstance(value, dict) and "open" in value:
        try:
            data = value["open"]("/etc/passwd", "rb").read(64)
        except OSError as error:
            print("blocked:", error)
        else:
            print("ESCAPED: read /etc/passwd:", data[:16])
print("blocked: no host builtins through _context")
