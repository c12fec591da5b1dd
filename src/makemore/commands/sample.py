"""`makemore sample [RUN]`: generate new items from a run or the bundled model, to stdout or a file (Run.stream)."""

from __future__ import annotations

import sys
from contextlib import nullcontext

from ..config import FORMATS, SAMPLE_OPTIONS
from ..errors import MakemoreError
from .items import RUN_HELP, load_run
from .options import add_device, add_options, options_given

CONSTRAINTS_HELP = ("--prefix, --min-len and --max-len shape each item as it is drawn (the length rules change the "
                    "model's odds: items are cut at --max-len and run on until --min-len); --novel, --suffix, --contains, "
                    "--exclude and --unique keep only the items that meet them, drawing at most max(1000, 50 n) items in "
                    "all: when that finds fewer than n, the ones found are given, stderr says how many of how many draws, "
                    "and the exit status is 1")


def add_parser(commands):
    p = commands.add_parser("sample", help="generate new items from a run (or the bundled model)", epilog=CONSTRAINTS_HELP)
    p.add_argument("run", nargs="?", help=RUN_HELP)
    add_options(p, SAMPLE_OPTIONS)
    add_device(p)
    # output (issue #11): where the items go and in what form
    p.add_argument("--format", choices=FORMATS, help="txt: one item per line; json: a list; csv: a header, then each "
                                                     "item and its nll_per_char (default: --out's extension, else txt)")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.add_argument("--out", metavar="FILE", help="write the items to FILE, whole or not at all, instead of printing them "
                                                 "(either way they are written as they are drawn, in constant memory)")
    p.add_argument("--force", action="store_true", help="let --out replace an existing file")
    return p


def run(args) -> int:
    from ..constraints import NotEnough
    from ..output import ItemWriter, check_out, format_of, out_file

    if args.json and args.format not in (None, "json"):
        raise MakemoreError(f"--json is --format json; give one of --json and --format {args.format}")
    fmt = "json" if args.json else format_of(args.out, args.format)
    if args.out is not None:
        check_out(args.out, args.force)  # before sampling, not after
    loaded = load_run(args.run, args.device, "sampling")
    status, shortfall = 0, None
    chunks = loaded.stream(**options_given(args, SAMPLE_OPTIONS))  # checks every option before anything is written
    # each chunk is written as it is drawn, so millions of items are never all in memory; to --out
    # through a temporary file renamed at the end, so the file is whole or not there
    with nullcontext(sys.stdout) if args.out is None else out_file(args.out, args.force) as out:
        writer = ItemWriter(out, fmt)
        try:
            for items in chunks:
                writer.write(items, loaded.score(items) if fmt == "csv" else None)
        except NotEnough as e:  # the items found are written; say how many of how many
            status, shortfall = e.exit_code, e
        writer.close()
    if shortfall is not None:
        print(f"makemore: {shortfall}", file=sys.stderr)
    if args.out is not None:
        print(f"makemore: wrote {writer.count} items to {args.out} ({fmt})", file=sys.stderr)
    return status
