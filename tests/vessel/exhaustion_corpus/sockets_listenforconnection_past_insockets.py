# attack: listening sockets, with a TCP listener on every allowed port
# expect: error:ResourceExhaustedError
# message: insockets: all 3 allowed are in use
# allotment: insockets=3, connport=61410-61419
listeners = []
for port in range(61410, 61420):
    listeners.append(listenforconnection('127.0.0.1', port))
