"""`makemore score [RUN] TEXT...`: the log-likelihood of given items under a run's model (Run.score), or
with --explain, character by character (explain.py). Items come as arguments, from --items FILE or
from standard input (`-`), a chunk at a time; one the model cannot score is named on stderr and the
others are scored (exit status 1)."""

from __future__ import annotations

import json
import sys

from .items import add_items, chunks, items_given, load_run, problem, run_and_texts
from .options import add_device

EXPLAIN_TOP = 3  # alternatives `score --explain` shows at each position


def add_parser(commands):
    p = commands.add_parser("score", help="log-likelihood of given items under a run's model (or the bundled model)")
    add_items(p, "score")
    p.add_argument("--label", help="a labelled model: the likelihood given this label (default: under any label, "
                                   "weighted by the labels' frequencies)")
    add_device(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--explain", action="store_true", help=f"per character (the end included): the probability the "
                                                          f"model gave it, its rank, and the model's top {EXPLAIN_TOP} there")
    return p


def run(args) -> int:
    path, texts = run_and_texts(args)
    items = items_given(texts, args.items)
    loaded = load_run(path, args.device, "scoring")
    if args.label is not None:
        loaded.vocab.label_token(args.label)  # an unknown label: one line, before any item
    if args.explain:
        return explain_items(loaded, list(items), args)
    out = ListWriter(args.json)
    for part in chunks(items):
        why = {t: problem(loaded, t) for t in part}
        scores = iter(loaded.score([t for t in part if why[t] is None], args.label))
        for text in part:
            if why[text] is not None:
                out.cannot(text, f"cannot score {text!r}: it {why[text]}")
            else:
                s = next(scores)
                out.write(s.to_dict(), f"{s.text}\tnll {s.nll:.4f}\tper char {s.nll_per_char:.4f}\tchars {s.chars}")
    return out.close()


class ListWriter:
    """Lines of text, or one JSON list written an entry at a time (the bytes json.dumps of the whole
    list would give); items that could not be done are said on stderr, and in the JSON as an error."""

    def __init__(self, as_json: bool):
        self.as_json, self.count, self.failed = as_json, 0, 0

    def write(self, entry: dict, line: str) -> None:
        if self.as_json:
            print(("[" if self.count == 0 else ", ") + json.dumps(entry, ensure_ascii=False), end="")
        else:
            print(line)
        self.count += 1

    def cannot(self, text: str, message: str) -> None:
        print(f"makemore: {message}", file=sys.stderr)
        self.failed += 1
        if self.as_json:
            self.write({"text": text.strip(), "error": message}, "")

    def close(self) -> int:
        if self.as_json:
            print("]" if self.count else "[]")
        return 1 if self.failed else 0


def explain_items(loaded, texts: list[str], args) -> int:
    from ..explain import explain_many
    from ..output import explanation

    texts = [t.strip() for t in texts]
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
