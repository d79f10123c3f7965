"""The researcher's library: find vessels, target them, and run commands on many at once (`seattle` CLI and scripts)."""
