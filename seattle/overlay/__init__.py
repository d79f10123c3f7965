"""Our Kademlia overlay: a sans-IO protocol engine, the drivers that run it, and what it stores.

Nothing here imports `seattle.advertise`: the record format lives here, the advertiser above builds on it.

- nodeid — 256-bit node ids, XOR distance, contacts (id, IP, port) and their packed form; ids bound to work
  (`NetworkParameters`, `id_is_bound`, `solve_identity`)
- addresses — address scopes: which peer addresses a node on a given network talks to
- messages — the signed datagram format: encode, decode, message kinds
- routing — the k-bucket routing table, with per-subnet caps and replacement caches
- lookup — the iterative lookup as a state machine, and the RTT estimator behind its timeouts
- records — signed vessel records: sign, verify, merge, their DHT key
- store — the records a node holds for others: verified, versioned, expiring, capped
- reachability — where peers see this node and whether strangers reach it: observations, dial-back checks,
  states (the engine runs it; a node not found public is a DHT client)
- protocol — `OverlayNode`, the engine: datagrams, time and randomness in, datagrams out
- transport — `OverlayTransport`, the one interface of a running node, and its helpers written once
- udp — `UdpOverlay`, the real driver: one engine on a trio UDP socket
- simnet — `SimNetwork`, the simulated network in virtual time (run by a trio task or stepped by hand), and
  each node's `SimTransport`
- simnat — the simulated network's home routers: NAT mappings, filters and their timeouts
- join — joining the overlay, the same for the node manager, browse, simulations and the bench
- simulation — overlay simulations at scale on `simnet` (run by `simulations/overlay.py`)
"""
