# attack: memory, with an integer of 10**11 bits (12.5 GB) made by one shift
# expect: error:MemoryError
x = 1 << 10**11
