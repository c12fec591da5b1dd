"""Command line: registers the commands (one module each in commands/) and turns what they raise into
one line on stderr and an exit status."""

from __future__ import annotations

import argparse
import sys
import time

from .commands import classify, eval, lr_find, models, plot, sample, score, serve, train
from .config import OptionError
from .errors import MakemoreError, secondary_rank
from .signals import EXIT_STATUS, Terminated, exit_status, stop_on_signals

COMMANDS = (train, eval, sample, score, classify, plot, lr_find, serve, models)  # in the order --help lists them
LINGER = 30  # seconds a rank other than 0 waits to be stopped after an error (linger)


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    parser = Parser(prog="makemore", description="Learn from a file of lines, then make more things like them.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(sub).set_defaults(func=command.run)
    return parser


def main(argv=None) -> int:
    with stop_on_signals():
        status = run(argv)
        if status and status not in EXIT_STATUS.values() and secondary_rank():
            linger()
        return status


def linger() -> None:
    """A rank other than 0 that stops with an error waits for rank 0, which says why, to exit first:
    the launcher then stops this one (torchrun stops the others when one process ends with an
    error). Had this rank exited first, the launcher could have stopped rank 0 mid-sentence. (After
    a signal there is no need: rank 0 only notes another one while it finishes, signals.deferred.)"""
    try:
        time.sleep(LINGER)
    except KeyboardInterrupt:
        pass


def run(argv) -> int:
    """The command's exit status; a user's error or an interruption is one line on stderr. A command
    imports PyTorch only once it runs, here, where a signal meanwhile is one line too."""
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        status = args.func(args)
        return exit_status() if status == 130 else status  # 130: the trainer stopped on Ctrl-C or SIGTERM
    except MakemoreError as e:
        if not secondary_rank():  # rank 0 of a distributed run says what every rank met
            print(f"makemore: error: {e.for_cli() if isinstance(e, OptionError) else e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:
        if not secondary_rank():
            print("makemore: terminated" if isinstance(e, Terminated) else "makemore: interrupted", file=sys.stderr)
        return exit_status(e)
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
