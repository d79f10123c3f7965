"""The pool: vessels donors share with anyone, leased by the node itself, with no central server.

Between the node manager (which serves the pool calls and imports this package) and the advertiser. Sans-IO:
nothing here touches a socket, a file or the clock; the node manager's `seattle.nodemgr.pool` does.

    formats   the signed offers, leases and attestations, double-grant evidence, where each is filed, quota
    ledger    the lease ledger: who leases which pool vessel until when, persisted before every answer; the
              evidence it holds and serves
    credit    the attestations looked up for a key, cached for minutes (bounded), so acquires skip the lookup
    refusals  why the pool refuses: stable codes and the messages people read, with numbers
"""
