"""The `segattn` command's subcommands: LightningCLI's fit, validate and test (lightning.py),
and segattn's own, one module each with `add_parser(subparsers)` and `run(args)`."""
