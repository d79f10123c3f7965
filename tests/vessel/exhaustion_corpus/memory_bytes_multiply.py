# attack: memory, with one 10 GB bytes object
# expect: error:MemoryError
x = b'x' * 10**10
