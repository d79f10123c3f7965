# attack: the loopsend rate, with a TCP connection to its own listener on 127.0.0.1, sending and draining
# expect: rate:loopsend
# allotment: loopsend=100000, connport=61450-61459
# A send is charged 64 + the bytes sent to loopsend, a receive 64 (Repy's per-packet overhead);
# `charged` adds up exactly what the loopsend bucket saw during the flood.
server = listenforconnection('127.0.0.1', 61450)
client = openconnection('127.0.0.1', 61450, '127.0.0.1', 61451, 5)
accepted = None
while accepted is None:
    try:
        accepted = server.getconnection()[2]
    except SocketWouldBlockError:
        sleep(0.01)
chunk = b'c' * 4000
charged = 0
start = getruntime()
while getruntime() - start < 2:
    try:
        charged += 64 + client.send(chunk)
    except SocketWouldBlockError:
        pass
    try:
        accepted.recv(65536)
        charged += 64
    except SocketWouldBlockError:
        pass
log('FLOOD bytes=' + str(charged) + ' seconds=' + str(getruntime() - start) + ' call=4064\n')
