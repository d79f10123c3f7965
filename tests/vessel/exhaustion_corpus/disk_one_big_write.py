# attack: disk, with one writeat of 2 MB into one file, twice the diskused allotment
# expect: error:ResourceExhaustedError
# message: diskused: no space left
# allotment: diskused=1000000
# The file-size rlimit (= diskused) stops the write at once. The file it leaves behind is over the
# allotment too, so the nanny's disk poll (every 0.5 s) would kill the vessel if it looked before the
# program has ended. To keep the outcome certain, wait until a poll has just happened: the reported
# diskused changes once the poll has seen the marker file.
before = getresources()[1]['diskused']
marker = openfile('marker', True)
marker.close()
while getresources()[1]['diskused'] == before:
    sleep(0.005)
big = openfile('big', True)
big.writeat(b'x' * 2000000, 0)
