# UDP ping client (Repy V1 names, from the original Seattle slides, in Python 3 syntax).
# Sends MESSAGE to the server's port at SERVER_IP, prints the reply, and exits after one second.
# Usage: seattle vessel run --ip 127.0.0.1 examples/ping_client.py SERVER_IP MESSAGE [SERVER_PORT [MY_PORT]]


def got_reply(srcip, srcport, mess, ch):
    print('received:', str(mess, 'utf-8'), 'from', srcip, srcport)


if callfunc == 'initialize':
    server_port = int(callargs[2]) if len(callargs) > 2 else 63100
    my_port = int(callargs[3]) if len(callargs) > 3 else 63101
    recvmess(getmyip(), my_port, got_reply)
    # send the second arg to the first arg's IP
    sendmess(callargs[0], server_port, callargs[1], getmyip(), my_port)
    # exit in one second
    settimer(1, exitall, ())
