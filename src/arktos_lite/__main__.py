"""`python -m arktos_lite` is the `arktos` command."""

from arktos_lite import cli

cli.main()
