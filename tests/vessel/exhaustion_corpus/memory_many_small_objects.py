# attack: memory, with millions of small objects (tiny lists), each its own allocation
# expect: killed-memory
# allotment: memory=64000000
objects = []
while True:
    for i in range(100000):
        objects.append([i])
    sleep(0.01)
