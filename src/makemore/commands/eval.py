"""`makemore eval RUN`: the exact NLL of a run over a whole split (Run.evaluate)."""

from __future__ import annotations

import json

from .options import add_device


def add_parser(commands):
    p = commands.add_parser("eval", help="exact NLL of a run over a whole split")
    p.add_argument("run")
    p.add_argument("--split", choices=["train", "val", "test"], default="val")
    p.add_argument("--data", help="evaluate on this file's split instead of the run's data")
    add_device(p)
    p.add_argument("--json", action="store_true")
    return p


def run(args) -> int:
    from ..api import load

    r = load(args.run, device=args.device).evaluate(args.split, args.data)
    if args.json:
        print(json.dumps(r.to_dict()))
    else:
        print(f"{r.split}: nll {r.nll:.4f} nats/char, {r.bits_per_char:.4f} bits/char, perplexity {r.perplexity:.3f} "
              f"over {r.chars} characters in {r.items} items")
        for label, part in (r.by_label or {}).items():
            print(f"  label {label}: nll {part.nll:.4f} nats/char, {part.bits_per_char:.4f} bits/char over {part.chars} "
                  f"characters in {part.items} items")
    return 0
