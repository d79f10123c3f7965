"""The node manager: the donor's daemon that serves the signed node manager API over TCP and runs the vessels.

Imports neither the donor layer (`seattle.donor`) nor the planner (`seattle.planner`), which build on it.

    calltable     the call table: names, permission classes, argument checks (no sandbox imports)
    nodeerror     NodeError: a call the node refuses, with a stable code
    api           NodeAPI: what each call does on the node's state and launcher
    signing       signed requests and their verification; the response form
    frames        length-prefixed msgpack frames on the TCP connection
    server        NodeServer: connections, limits, requests answered in order
    client        NodeClient: the client side of the protocol (pipelined, trio)
    database      the SQLite store of the node's vessels (rows, transactions, schema)
    vessels       NodeState: the vessels and their files kept consistent with the database
    vesselfiles   a vessel's files as the API handles them (atomic uploads through a directory descriptor)
    nodedir       NodeDir: every path, read and write of a node directory
    config        NodeConfig: what node.json holds
    node          NodeManager: key, state, launcher, server (and the overlay) started and stopped together
    overlay_service  the node on the overlay: join, rejoin when alone, routing table, advertiser
    pool          NodePool: the pool vessels, leased through the ledger (seattle.pool), recovered after a kill
    pool_directory  OverlayDirectory: who holds a key's slot, who donates for it, asked of the overlay
    control       the control socket's server: status, stop and the pool's evict/block for the donor's commands
    daemon        create_node and run_daemon: `seattle node init` and `seattle node run`
"""
