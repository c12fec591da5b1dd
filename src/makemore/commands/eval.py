"""`makemore eval [RUN]`: the exact NLL of a run (or the bundled model) over a whole split of its data
(Run.evaluate), of another file's split (--data), or over every item given with --items FILE or `-`
(Run.evaluate_items)."""

from __future__ import annotations

import json

from ..config import SPLIT_NAMES
from ..errors import MakemoreError
from .items import RUN_HELP, items_given, load_run
from .options import add_device


def add_parser(commands):
    p = commands.add_parser("eval", help="exact NLL of a run over a whole split, or over given items")
    p.add_argument("run", nargs="?", help=RUN_HELP)
    p.add_argument("--split", choices=SPLIT_NAMES, default="val")
    p.add_argument("--data", help="evaluate on this file's split instead of the run's data")
    p.add_argument("--items", metavar="FILE", help="evaluate on every line of FILE instead of a split ('-': standard "
                                                   "input; item<TAB>label lines for a labelled run)")
    add_device(p)
    p.add_argument("--json", action="store_true")
    return p


def run(args) -> int:
    if args.items is not None and args.data is not None:
        raise MakemoreError("--items evaluates the items of a file and --data a split of one; give one of them")
    loaded = load_run(args.run, args.device, "evaluating")
    r = loaded.evaluate(args.split, args.data) if args.items is None else evaluate_items(loaded, args.items)
    if args.json:
        print(json.dumps(r.to_dict()))
    else:
        what = f"{r.split}:" if args.items is None else f"{args.items if args.items != '-' else 'standard input'}:"
        print(f"{what} nll {r.nll:.4f} nats/char, {r.bits_per_char:.4f} bits/char, perplexity {r.perplexity:.3f} "
              f"over {r.chars} characters in {r.items} items")
        for label, part in (r.by_label or {}).items():
            print(f"  label {label}: nll {part.nll:.4f} nats/char, {part.bits_per_char:.4f} bits/char over {part.chars} "
                  f"characters in {part.items} items")
    return 0


def evaluate_items(loaded, source: str):
    from ..data import split_labels

    items, labels = split_labels(list(items_given([], source)), source="standard input" if source == "-" else source)
    return loaded.evaluate_items(items, labels)
