"""seattle: a decentralized Seattle testbed. Packages, from the top layer down (docs/architecture.md draws
them; `lint-imports` enforces that each imports only the layers below it):

    cli         the `seattle` command
    demo        `seattle demo`: a whole experiment on a local testbed
    testbed     N node managers on loopback in one overlay
    netlab      a multi-host network in Linux network namespaces: public hosts, NATed and firewalled homes
    experiment  the researcher's library: browse, targets, fan-out, sessions
    donor       the donor's side of a node: donation, start/stop, service, uninstall
    planner     signed installer profiles and the installer
    nodemgr     the node manager daemon: signed API, vessels' state, node directory, overlay service
    advertise   vessel advertisements published in and read from the overlay
    overlay     the Kademlia DHT: sans-IO engine, signed records, UDP and simulated transports
    vessel      the sandbox, by the process that runs each part (host, supervisor, vessel child)
    testing     the one fake network, for tests, benchmarks and simulations

Shared leaves, imported by any layer and importing none: resources, keys, envelope, boundedmsgpack (msgpack
decoding with its cost bounded before objects are built), budgets (sources by network prefix and their rate
tables), errors, refusal, addresses, home, atomicfile, natkind (the home-router kinds both testbeds model).
"""

__version__ = "0.1.0"
