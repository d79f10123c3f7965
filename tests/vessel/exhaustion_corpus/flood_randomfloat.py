# attack: the random rate, calling randomfloat (8 random bytes each, Repy V1) as fast as allowed
# expect: rate:random
# allotment: random=400
got = 0
start = getruntime()
while getruntime() - start < 2:
    randomfloat()
    got += 8
log('FLOOD bytes=' + str(got) + ' seconds=' + str(getruntime() - start) + ' call=8\n')
