"""Test support shipped with the package (as `trio.testing` is), so tests, benchmarks and simulations share it.

- overlay — seeded identities and engines, and a seeded simulated overlay (`seattle.overlay.simnet`) ready to
  run: the one fake network the tests use, under trio or stepped by hand (`SimNetwork.start_stepping`).
"""
