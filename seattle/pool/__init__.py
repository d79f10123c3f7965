"""The pool: vessels donors share with anyone, leased by the node itself, with no central server.

Between the node manager (which serves the pool calls and imports this package) and the advertiser.

    formats   the signed offers, leases and attestations, double-grant evidence, where each is filed, quota
"""
