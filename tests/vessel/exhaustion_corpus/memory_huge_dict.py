# attack: memory, with a dict that keeps growing (its table is reallocated at twice the size each time)
# expect: killed-memory
# allotment: memory=64000000
table = {}
n = 0
while True:
    for _ in range(100000):
        table[n] = n
        n += 1
    sleep(0.01)
