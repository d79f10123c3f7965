# goal: import socket and send a real UDP datagram over loopback, bypassing the broker (Landlock has no UDP rules)
# capability: socket
# stopped-by: language, seccomp, namespaces
import socket

try:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.sendto(b"raw datagram", receiver.getsockname())
    data, address = receiver.recvfrom(64)
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: raw UDP datagram received:", data)
