"""Test support shipped with the package (as `trio.testing` is), so tests, benchmarks and simulations share it.

- overlay — seeded identities and engines, and a seeded simulated overlay (`seattle.overlay.simnet`) ready to
  run: the one fake network the tests use, under trio or stepped by hand (`SimNetwork.start_stepping`).
- attackers — bounded attack clients against a node manager on loopback (issue 13's attack classes), each
  also runnable in a process of its own (`python -m seattle.testing.attackers`)
- hostile — the victim side: a real `seattle node run` subprocess, the owner's timed calls, its sampled RSS
"""
