# attack: the C stack, with repr() of a list nested a million deep (repr recurses in C)
# expect: error:RecursionError
nested = []
for _ in range(10**6):
    nested = [nested]
text = repr(nested)
