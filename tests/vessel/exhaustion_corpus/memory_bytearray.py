# attack: memory, with one zero-filled 4 GB bytearray
# expect: error:MemoryError
x = bytearray(4 * 10**9)
