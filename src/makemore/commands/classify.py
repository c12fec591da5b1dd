"""`makemore classify [RUN] TEXT...`: a labelled model's posterior of each label for given items
(Run.classify), from arguments, --items FILE or standard input (`-`); an item the model cannot score
is named on stderr and the others are classified (exit status 1)."""

from __future__ import annotations

from .items import add_items, chunks, items_given, load_run, problem, run_and_texts
from .options import add_device
from .score import ListWriter


def add_parser(commands):
    p = commands.add_parser("classify", help="a labelled model's posterior of each label for given items",
                            description="p(label | item) for each label, from the model's p(item | label) and the labels' "
                                        "frequencies in the training split (Bayes' rule).")
    add_items(p, "classify")
    add_device(p)
    p.add_argument("--json", action="store_true")
    return p


def run(args) -> int:
    path, texts = run_and_texts(args)
    items = items_given(texts, args.items)
    loaded = load_run(path, args.device, "classifying")
    loaded.classify([])  # an unlabelled run: one line, before any item
    out = ListWriter(args.json)
    for part in chunks(items):
        why = {t: problem(loaded, t) for t in part}
        posteriors = iter(loaded.classify([t for t in part if why[t] is None]))
        for text in part:
            if why[text] is not None:
                out.cannot(text, f"cannot classify {text!r}: it {why[text]}")
                continue
            posterior = next(posteriors)
            shown = "  ".join(f"{label} {p:.3f}" for label, p in sorted(posterior.items(), key=lambda kv: -kv[1]))
            out.write({"text": text, "posterior": posterior}, f"{text}\t{shown}")
    return out.close()
