# goal: find the child's broker client with gc and send it requests for forbidden ports directly, skipping the API's own checks (the broker must check again)
# capability: socket
# stopped-by: language, api
import gc

limits = getresources()[0]
forbidden = 50000
while forbidden in limits["connport"] or forbidden in limits["messport"]:
    forbidden += 1
clients = [item for item in gc.get_objects() if type(item).__name__ == "BrokerClient"]
if not clients:
    print("blocked: no broker client found")
for client in clients:
    for request in (
        ("tcp_listen", "127.0.0.1", forbidden),
        ("udp_listen", "127.0.0.1", forbidden),
        ("udp_send", "127.0.0.1", 9, b"x", "127.0.0.1", forbidden),
        ("tcp_listen", "0.0.0.0", sorted(limits["connport"] or {forbidden})[0]),
    ):
        try:
            handle = client.call(*request)
        except Exception as error:
            print("broker refused", request[0], type(error).__name__)
        else:
            print("ESCAPED: the broker accepted", request, "->", handle)
