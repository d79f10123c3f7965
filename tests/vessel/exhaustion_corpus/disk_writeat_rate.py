# attack: the filewrite rate, rewriting one 4 KiB block as fast as the API allows
# expect: rate:filewrite
# allotment: filewrite=200000
f = openfile('block', True)
block = b'x' * 4096
written = 0
start = getruntime()
while getruntime() - start < 2:
    f.writeat(block, 0)
    written += 4096
log('FLOOD bytes=' + str(written) + ' seconds=' + str(getruntime() - start) + ' call=4096\n')
