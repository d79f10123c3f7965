# goal: import socket and start a TCP connection to a non-loopback host (TEST-NET-1, 192.0.2.1, which no one may route), bypassing the broker
# capability: socket
# stopped-by: language, seccomp, landlock, namespaces
import errno
import socket

try:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    result = sock.connect_ex(("192.0.2.1", 80))
except OSError as error:
    print("blocked:", error)
else:
    if result in (0, errno.EINPROGRESS):
        print("ESCAPED: a connection to a non-loopback host was under way")
    else:
        print("blocked:", errno.errorcode.get(result, result))
    sock.close()
