# attack: file handles, opening new files without ever closing one
# expect: error:ResourceExhaustedError
# message: filesopened: all 6 allowed are in use
# allotment: filesopened=6
handles = []
n = 0
while True:
    handles.append(openfile('handle' + str(n), True))
    n += 1
