# attack: outgoing sockets, with one connection after another to its own listener on 127.0.0.1
# expect: error:ResourceExhaustedError
# message: outsockets: all 3 allowed are in use
# allotment: outsockets=3, connport=61420-61429
server = listenforconnection('127.0.0.1', 61420)
connections = []
for port in range(61421, 61430):
    connections.append(openconnection('127.0.0.1', 61420, '127.0.0.1', port, 5))
