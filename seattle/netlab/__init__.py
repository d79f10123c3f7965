"""A multi-host network on one Linux machine, in network namespaces: a switch, public hosts, and home networks
behind NAT routers and firewalls (`seattle.natkind.NatKind`), for tests that need real NATs. Root only.

- lab — `Lab`, `Host`, `Home`: build the topology, run and spawn processes in a host, remove it all
- system — the `ip`/`iptables` commands, and the removal by prefix that also finds a killed run's leftovers
- errors — every message a person sees from the testbed

See docs/netlab.md. Nothing here imports the CLI; the local testbed (`seattle.testbed`) and tests build on it.
"""
