# attack: CPU and memory, with pow() on an exponent of a billion (a 415 MB result) in one C-level call
# expect: throttled
# allotment: cpu=0.1
x = pow(10, 10**9)
