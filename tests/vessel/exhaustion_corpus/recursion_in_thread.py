# attack: the C stack of a program thread, with unbounded recursion in it
# expect: error:RecursionError
def dive(depth):
    return dive(depth + 1) + 1


def body():
    dive(0)


createthread(body)
