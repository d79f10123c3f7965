# attack: disk, with many small files, none of them anywhere near the file-size limit
# expect: killed-disk
# allotment: diskused=500000
n = 0
while True:
    f = openfile('small' + str(n), True)
    f.writeat(b'x' * 20000, 0)
    f.close()
    n += 1
    sleep(0.005)
