# attack: the lograte, with log() in a tight loop
# expect: rate:lograte
# allotment: lograte=20000
line = 'L' * 499 + '\n'
got = 0
start = getruntime()
while getruntime() - start < 2:
    log(line)
    got += 500
log('FLOOD bytes=' + str(got) + ' seconds=' + str(getruntime() - start) + ' call=500\n')
