# goal: bind listeners to 0.0.0.0 or to an address the vessel was not given, so hosts beyond loopback could reach the vessel
# capability: socket
# stopped-by: api
limits = getresources()[0]
tcp_ports = sorted(limits["connport"]) or [50000]
udp_ports = sorted(limits["messport"]) or [50000]
for address in ("0.0.0.0", "::", "127.0.0.2", "10.255.255.254"):
    for label, listen, port in (("tcp", listenforconnection, tcp_ports[0]), ("udp", listenformessage, udp_ports[0])):
        try:
            listener = listen(address, port)
        except Exception as error:
            print("refused", label, address, repr(error))
        else:
            print("ESCAPED: listening on", address, label, port)
            listener.close()
