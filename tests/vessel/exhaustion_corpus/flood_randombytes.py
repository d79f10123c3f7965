# attack: the random rate, calling randombytes (1024 bytes each) as fast as allowed
# expect: rate:random
# allotment: random=10000
got = 0
start = getruntime()
while getruntime() - start < 2:
    got += len(randombytes())
log('FLOOD bytes=' + str(got) + ' seconds=' + str(getruntime() - start) + ' call=1024\n')
