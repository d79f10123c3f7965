# attack: CPU and memory, with an integer of 10**10 decimal digits computed in one C-level call
# expect: throttled
# allotment: cpu=0.1
x = 10**10**10
