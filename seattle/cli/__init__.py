"""The `seattle` command: one click command per function, each calling one library function.

The top layer: it imports every other package and none imports it. Errors are raised by the library as
`seattle.errors.SeattleError` and printed once, by `main`.

    main              the click group; subcommands are imported only when they run (fast `--help`)
    __main__          `python -m seattle.cli`, for where the console script is not on PATH
    identity          keygen
    vessel            vessel run / doctor: a program in a local vessel; what the sandbox can use here
    node              node init / run: create a node directory, run its node manager in the foreground
    donor             node start / stop / status / top / service install / uninstall (`seattle.donor`)
    call              call: any node manager call from the shell
    call_arguments    the words of `seattle call` parsed into a call, and its result shown
    planner           installer build (`seattle.planner`)
    research_common   what the researcher commands share: session, identity, options, reports
    research_targets  browse, contact, on, as, add, remove, move, genkeys, loadkeys, help
    research_vessels  list, update, upload, download, cat, delete, run, start, stop, reset, split, join
    research_show     show ... and set ...
    research_state    savestate / loadstate
    shell             the interactive shell (seash's successor) over the same commands
    terminal          printable(): control characters in text from nodes escaped before it is printed
    demo              demo (`seattle.demo`)
"""
