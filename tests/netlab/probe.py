"""A tiny network probe run inside the lab's namespaces (stdlib only, started with `python3 probe.py ...`).

    serve PORT                      answer every UDP datagram and TCP connection on PORT with the sender's
                                    address as the server saw it ("IP:PORT"); prints "ready" once bound
    udp LOCAL_PORT HOST:PORT...     from LOCAL_PORT, send one datagram to each HOST:PORT, wait for the answers
    tcp LOCAL_PORT HOST:PORT...     from LOCAL_PORT (0: any), connect to each HOST:PORT, read the answer

`udp` and `tcp` print one JSON object: {"HOST:PORT": "IP:PORT the server saw" or null when nothing came
back (or the error's name)}; `--wait S` bounds each answer (default 2 s).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading


def serve(port: int) -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", port))
    tcp.listen(16)

    def answer_udp() -> None:
        while True:
            _, (host, sender_port) = udp.recvfrom(2048)
            udp.sendto(f"{host}:{sender_port}".encode(), (host, sender_port))

    threading.Thread(target=answer_udp, daemon=True).start()
    print("ready", flush=True)
    while True:
        connection, (host, sender_port) = tcp.accept()
        with connection:
            connection.sendall(f"{host}:{sender_port}\n".encode())


def ask_udp(local_port: int, targets: list[str], wait: float) -> dict[str, str | None]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", local_port))
    sock.settimeout(wait)
    seen: dict[str, str | None] = {}
    for target in targets:
        host, port = target.rsplit(":", 1)
        try:
            sock.sendto(b"probe", (host, int(port)))
            data, _ = sock.recvfrom(2048)
            seen[target] = data.decode()
        except OSError as error:  # a timeout, or no route to a private address
            seen[target] = None if isinstance(error, TimeoutError) else type(error).__name__
    return seen


def ask_tcp(local_port: int, targets: list[str], wait: float) -> dict[str, str | None]:
    seen: dict[str, str | None] = {}
    for target in targets:
        host, port = target.rsplit(":", 1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", local_port))
        sock.settimeout(wait)
        try:
            sock.connect((host, int(port)))
            seen[target] = sock.makefile().readline().strip()
        except OSError as error:
            seen[target] = None if isinstance(error, TimeoutError) else type(error).__name__
        finally:
            sock.close()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["serve", "udp", "tcp"])
    parser.add_argument("port", type=int)
    parser.add_argument("targets", nargs="*")
    parser.add_argument("--wait", type=float, default=2.0)
    arguments = parser.parse_args()
    if arguments.mode == "serve":
        serve(arguments.port)
    ask = ask_udp if arguments.mode == "udp" else ask_tcp
    json.dump(ask(arguments.port, arguments.targets, arguments.wait), sys.stdout)


if __name__ == "__main__":
    main()
