# goal: import socket and make a real TCP connection over loopback, bypassing the broker
# capability: socket
# stopped-by: language, seccomp, landlock, namespaces
import socket

try:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=2)
    peer, address = server.accept()
except OSError as error:
    print("blocked:", error)
else:
    print("ESCAPED: raw TCP connection over", server.getsockname())
    peer.close()
    client.close()
    server.close()
