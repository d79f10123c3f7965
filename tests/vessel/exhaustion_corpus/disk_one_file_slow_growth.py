# attack: disk, with one file that grows 64 KB at a time with pauses
# expect: killed-disk
# allotment: diskused=4000000
# A 2 MB ballast file first, so the nanny's disk poll sees the total pass diskused long before the
# growing file itself reaches the file-size rlimit (= diskused): the nanny, not the rlimit, ends it.
ballast = openfile('ballast', True)
ballast.writeat(b'b' * 2000000, 0)
ballast.close()
big = openfile('big', True)
size = 0
while True:
    big.writeat(b'x' * 65536, size)
    size += 65536
    sleep(0.05)
