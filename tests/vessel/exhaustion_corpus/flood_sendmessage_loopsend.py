# attack: the loopsend rate, with UDP messages to its own listener on 127.0.0.1 as fast as allowed
# expect: rate:loopsend
# allotment: loopsend=100000, messport=61440-61449
# Repy charges every packet 64 bytes on top of its payload; `charged` counts what the bucket saw.
listener = listenformessage('127.0.0.1', 61440)
payload = b'm' * 1000
charged = 0
start = getruntime()
while getruntime() - start < 2:
    charged += 64 + sendmessage('127.0.0.1', 61440, payload, '127.0.0.1', 61441)
log('FLOOD bytes=' + str(charged) + ' seconds=' + str(getruntime() - start) + ' call=1064\n')
