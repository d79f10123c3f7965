# goal: write a library that hunts for the host builtins from inside its own namespace, import it with dylink, and pull its whole namespace (including '__builtins__') into the program with dy_import_module_symbols
# capability: file
# stopped-by: api, landlock
library = openfile("hunter.r2py", True)
library.writeat(b"""
found = []
for key in _context.keys():
    value = _context[key]
    if isinstance(value, dict) and 'open' in value:
        found.append(value)
""", 0)
library.close()
module = dy_import_module("hunter.r2py")
print("library found:", len(module.found))
dy_import_module_symbols("hunter.r2py")
candidates = list(module.found) + [value for value in _context.values() if isinstance(value, dict)]
for value in candidates:
    if "open" in value:
        try:
            data = value["open"]("/etc/passwd", "rb").read(64)
        except OSError as error:
            print("blocked:", error)
        else:
            print("ESCAPED: read /etc/passwd:", data[:16])
print("blocked: dylink exposes no host builtins")
