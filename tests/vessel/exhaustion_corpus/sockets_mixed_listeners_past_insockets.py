# attack: listening sockets, alternating UDP and TCP listeners (both count against insockets)
# expect: error:ResourceExhaustedError
# message: insockets: all 4 allowed are in use
# allotment: insockets=4, messport=61430-61439, connport=61430-61439
listeners = []
for port in range(61430, 61440):
    if port % 2:
        listeners.append(listenformessage('127.0.0.1', port))
    else:
        listeners.append(listenforconnection('127.0.0.1', port))
