"""The command line's verbs, one module each, over the library (cli.py registers them).

Each module has `add_parser(commands)`, which adds its subcommand to argparse's subparsers with its
arguments and help and returns it, and `run(args) -> int`, which does the work and returns the exit
status. A module imports only what building its parser needs (config.py, the model registry): the
library, and PyTorch with it, is imported inside `run`, so --help and an argument error answer at once.
"""
