# UDP ping server (Repy V1 names, from the original Seattle slides, in Python 3 syntax).
# Every datagram that arrives on the port is sent straight back to its sender.
# Usage: seattle vessel run --ip 127.0.0.1 examples/ping_server.py [PORT]


def got_message(srcip, srcport, mess, ch):
    sendmess(srcip, srcport, mess)


if callfunc == 'initialize':
    port = int(callargs[0]) if callargs else 63100
    recvmess(getmyip(), port, got_message)
    log('ping server listening on', getmyip(), port, '\n')
