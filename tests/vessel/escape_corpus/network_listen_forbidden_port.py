# goal: listen for TCP connections and UDP messages on local ports outside the allotment, including a privileged port
# capability: socket
# stopped-by: api
limits = getresources()[0]
candidates = [port for port in (22, 80, 50000, 50001, 65535) if port not in limits["connport"] | limits["messport"]]
for port in candidates:
    for label, listen in (("tcp", listenforconnection), ("udp", listenformessage)):
        try:
            listener = listen("127.0.0.1", port)
        except ResourceForbiddenError:
            print("blocked", label, port)
        except Exception as error:
            print("not refused by the port check:", label, port, repr(error))
        else:
            print("ESCAPED: listening on forbidden", label, "port", port)
            listener.close()
