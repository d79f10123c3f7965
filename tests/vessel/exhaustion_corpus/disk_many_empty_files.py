# attack: disk, with many empty files (each is charged one 4 KiB block)
# expect: killed-disk
# allotment: diskused=400000
n = 0
while True:
    openfile('empty' + str(n), True).close()
    n += 1
