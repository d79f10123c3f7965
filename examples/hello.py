# The smallest vessel program: writes to the vessel log, stores a file, reads it back, and reports its resources.
if callfunc == 'initialize':
    print('hello from a vessel; arguments:', callargs)
    f = openfile('greeting.txt', True)
    f.writeat(b'hello, seattle\n', 0)
    f.close()
    f = openfile('greeting.txt', False)
    print('read back:', f.readat(None, 0))
    f.close()
    limits, usage, stoptimes = getresources()
    print('cpu share allotted:', limits['cpu'], '- files in the vessel:', listfiles())
