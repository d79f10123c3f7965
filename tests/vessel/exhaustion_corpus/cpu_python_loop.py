# attack: CPU, with a busy loop of Python bytecode that never yields
# expect: throttled
# allotment: cpu=0.1
while True:
    pass
