# attack: CPU, with one C-level call that no timer inside the interpreter can interrupt
# expect: throttled
# allotment: cpu=0.1
sum(range(10**12))
