"""`makemore score RUN TEXT...`: the log-likelihood of given items under a run's model (Run.score), or
with --explain, character by character (explain.py)."""

from __future__ import annotations

import json
import sys

from .options import add_device

EXPLAIN_TOP = 3  # alternatives `score --explain` shows at each position


def add_parser(commands):
    p = commands.add_parser("score", help="log-likelihood of given items under a run's model")
    p.add_argument("run")
    p.add_argument("text", nargs="+")
    p.add_argument("--label", help="a labelled model: the likelihood given this label (default: under any label, "
                                   "weighted by the labels' frequencies)")
    add_device(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--explain", action="store_true", help=f"per character (the end included): the probability the "
                                                          f"model gave it, its rank, and the model's top {EXPLAIN_TOP} there")
    return p


def run(args) -> int:
    from ..api import load

    loaded = load(args.run, device=args.device)
    if args.explain:
        return explain_items(loaded, args)
    scores = loaded.score(args.text, args.label)
    if args.json:
        print(json.dumps([s.to_dict() for s in scores], ensure_ascii=False))
    else:
        for s in scores:
            print(f"{s.text}\tnll {s.nll:.4f}\tper char {s.nll_per_char:.4f}\tchars {s.chars}")
    return 0


def explain_items(loaded, args) -> int:
    from ..explain import explain_many
    from ..output import explanation

    texts = [t.strip() for t in args.text]
    labels = None
    if loaded.labels:  # given --label, or else each item's most likely label
        labels = [args.label] * len(texts) if args.label else [max(p, key=p.get) for p in loaded.classify(texts)]
        print(f"labels: {', '.join(f'{t} {label}' for t, label in zip(texts, labels))}" +
              ("" if args.label else " (each item's most likely; pass --label to choose)"), file=sys.stderr)
    explained = explain_many(loaded.model, loaded.vocab, texts, top=EXPLAIN_TOP, labels=labels)
    if args.json:
        print(json.dumps([{"text": t, "nll": sum(p.surprise for p in ps), "positions": [p.to_dict() for p in ps]}
                          for t, ps in zip(texts, explained)], ensure_ascii=False))
    else:
        print("\n\n".join(explanation(t, ps) for t, ps in zip(texts, explained)))
    return 0
