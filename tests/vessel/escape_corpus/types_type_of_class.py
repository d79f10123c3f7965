# goal: ask type() for the class of classes the program can name (a builtin type, its own class, the type of print) to get a metaclass
# capability: object
# stopped-by: language
# language-stage: runtime (the checker accepts this program; the safe type() refuses at run time)
class Plain:
    pass


candidates = [int, Plain, Exception, type(Plain()), type(print)]
obtained = []
for candidate in candidates:
    try:
        obtained.append(type(candidate))
    except TypeError as error:
        print("blocked:", error)
for metaclass in obtained:
    try:
        made = metaclass("Made", (), {})
    except TypeError:
        continue
    print("ESCAPED: a metaclass built", made)
    break
