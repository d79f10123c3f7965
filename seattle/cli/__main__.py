"""`python -m seattle.cli` is the `seattle` command (used where the console script is not on PATH)."""

from seattle.cli.main import main

main()
