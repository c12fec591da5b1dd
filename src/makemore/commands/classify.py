"""`makemore classify RUN TEXT...`: a labelled model's posterior of each label for given items (Run.classify)."""

from __future__ import annotations

import json

from .options import add_device


def add_parser(commands):
    p = commands.add_parser("classify", help="a labelled model's posterior of each label for given items",
                            description="p(label | item) for each label, from the model's p(item | label) and the labels' "
                                        "frequencies in the training split (Bayes' rule).")
    p.add_argument("run")
    p.add_argument("text", nargs="+")
    add_device(p)
    p.add_argument("--json", action="store_true")
    return p


def run(args) -> int:
    from ..api import load

    posteriors = load(args.run, device=args.device).classify(args.text)
    if args.json:
        print(json.dumps([{"text": t, "posterior": p} for t, p in zip(args.text, posteriors)], ensure_ascii=False))
    else:
        for text, posterior in zip(args.text, posteriors):
            print(text + "\t" + "  ".join(f"{label} {p:.3f}" for label, p in sorted(posterior.items(), key=lambda kv: -kv[1])))
    return 0
