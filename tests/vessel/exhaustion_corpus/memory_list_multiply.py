# attack: memory, with a list of a billion references (8 GB) in one allocation
# expect: error:MemoryError
x = [0] * 10**9
