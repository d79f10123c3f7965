"""nodemgr."""
