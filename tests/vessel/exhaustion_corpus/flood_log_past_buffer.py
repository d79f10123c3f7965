# attack: the vessel log, with far more output than its 16 KiB circular buffer, at the default lograte
# expect: rate:lograte
line = 'B' * 4095 + '\n'
got = 0
start = getruntime()
while getruntime() - start < 2:
    log(line)
    got += 4096
log('FLOOD bytes=' + str(got) + ' seconds=' + str(getruntime() - start) + ' call=4096\n')
