# goal: a __del__ hook runs at garbage collection, possibly inside API code; use it to reach the host builtins and open a host file
# capability: file
# stopped-by: language, landlock
results = []


class Bomb:
    def __del__(self):
        try:
            results.append(len.__self__.open("/etc/passwd", "rb").read(64))
        except OSError as error:
            results.append(error)


bomb = Bomb()
del bomb
for result in results:
    if isinstance(result, bytes):
        print("ESCAPED: read /etc/passwd:", result[:16])
    else:
        print("blocked:", result)
