"""The donor's side of a node: giving part of this machine, and installing, running and removing its node.

This layer sits above the node manager (`seattle.nodemgr`), beside the planner's (`seattle.planner`); the node
manager imports neither.

    donation   measure the machine, divide a percent of it into a profile's vessels, create the node
    manifest   what seattle created for a node (inside and outside its directory), for uninstall
    daemonctl  start the node manager detached, and ask it for its status or to stop (control socket client)
    service    the systemd user unit that keeps a node running
    uninstall  stop a node and remove exactly what seattle created for it
"""
