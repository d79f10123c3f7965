"""Advertising vessels in the overlay and finding them: the layer above `seattle.overlay`.

- dht — `publish` a signed record on the k nodes closest to its key, and `find_records` back, over any
  `OverlayTransport`
- advertiser — the node manager's advertiser: which records the node should have published, kept current
"""
