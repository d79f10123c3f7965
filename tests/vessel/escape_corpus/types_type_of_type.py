# goal: obtain the class factory type itself through type(type(0)) (Repy's typetypeisblocked case) and build a class with it
# capability: object
# stopped-by: language
# language-stage: runtime (the checker accepts this program; the safe type() refuses at run time)
try:
    factory = type(type(0))  # noqa: UP003 - the Repy test case, spelled as Repy spelled it
except TypeError as error:
    print("blocked:", error)
else:
    made = factory("Made", (), {})
    print("ESCAPED: obtained the class factory and built", made)
