# attack: CPU, with busy loops in several threads at once (the share is for the whole process)
# expect: throttled
# allotment: cpu=0.1
def spin():
    while True:
        pass


for _ in range(4):
    createthread(spin)
spin()
