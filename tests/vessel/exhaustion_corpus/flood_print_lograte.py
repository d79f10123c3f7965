# attack: the lograte, with print() in a tight loop from two threads at once
# expect: rate:lograte
# allotment: lograte=20000
# Each print writes 299 characters and a newline. Both threads add to one counter under a lock.
lock = createlock()
counts = {'bytes': 0, 'running': 2}
start = getruntime()


def flood():
    while getruntime() - start < 2:
        print('P' * 299)
        lock.acquire(True)
        counts['bytes'] += 300
        lock.release()
    lock.acquire(True)
    counts['running'] -= 1
    last = counts['running'] == 0
    lock.release()
    if last:
        log('FLOOD bytes=' + str(counts['bytes']) + ' seconds=' + str(getruntime() - start) + ' call=300\n')


createthread(flood)
flood()
