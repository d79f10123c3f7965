# attack: the C stack, with unbounded Python recursion
# expect: error:RecursionError
def dive(depth):
    return dive(depth + 1) + 1


dive(0)
