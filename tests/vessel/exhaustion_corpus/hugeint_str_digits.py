# attack: CPU, with the quadratic int-to-decimal conversion of a million-digit integer
# expect: error:ValueError
# message: Exceeds the limit
x = 10**10**6
s = str(x)
