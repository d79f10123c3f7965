"""The researcher's library: find vessels, target them, and run commands on many at once (`seattle` CLI and scripts).

Modules, one job each: `session` (what the researcher chose, in $SEATTLE_HOME/session.json), `targets` (numbered
vessels %N, groups, target expressions), `fanout` (one operation on many vessels, bounded and timed, with an
outcome per vessel), `operations` (the node manager calls behind each command, and their effect on the
session), `statefile` (savestate/loadstate), `browse` (finding vessels through the overlay), `pool` (acquiring, renewing
and releasing vessels from the pool), `pool_simulation` (the pool at scale in virtual time).
"""
