# attack: listening sockets, with a UDP listener on every allowed port
# expect: error:ResourceExhaustedError
# message: insockets: all 3 allowed are in use
# allotment: insockets=3, messport=61400-61409
listeners = []
for port in range(61400, 61410):
    listeners.append(listenformessage('127.0.0.1', port))
