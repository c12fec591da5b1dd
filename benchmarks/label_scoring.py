"""Scoring against many labels: how long `classify`, `score` under any label and the page's
explanation take on a run with thousands of labels.

    python benchmarks/label_scoring.py                  # 2,000 labels, bigram and lstm
    python benchmarks/label_scoring.py --labels 500 --models lstm

The data is the built-in names, each given one of `--labels` labels in turn (`emma<TAB>L0`,
`olivia<TAB>L1`, ...). Every label is a token of the vocabulary, so a model's output grows with
them, and an item scored "under any label" is scored once per label. The bigram is counted; the
lstm (makemore's default settings) is trained for one step: the timings depend on its size, not
on what it learned. Each case is timed once, after one untimed warm-up call of the same kind on
one text. Writes benchmarks/results/label_scoring.json (one entry per `--tag`, e.g. before and
after a change, with the commit it measured) and prints it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

import makemore
from makemore.data import resolve_data
from makemore.explain import explain_many

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "label_scoring.json"
sys.path.insert(0, str(HERE))
from models import machine_gflops  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 3)


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--labels", type=int, default=2000)
    p.add_argument("--models", nargs="+", default=["bigram", "lstm"])
    p.add_argument("--tag", default="now", help="the entry's name in the results file (e.g. before, after)")
    args = p.parse_args()
    torch.set_num_threads(1)  # as makemore serve runs inference
    names = resolve_data("names").read_text(encoding="utf-8").split()
    texts = names[:100]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "many-labels.txt"
        data.write_text("".join(f"{name}\tL{i % args.labels}\n" for i, name in enumerate(names)), encoding="utf-8")
        for model in args.models:
            steps = {} if model == "bigram" else {"max_steps": 1, "eval_interval": 1}
            makemore.train(data=str(data), model=model, out=Path(tmp) / model, device="cpu", quiet=True, log=lambda m: None, **steps)
            run = makemore.load(Path(tmp) / model, device="cpu")
            assert len(run.labels) == args.labels
            prior = run.label_prior()
            run.classify(texts[:1])  # warm up
            explain_many(run.model, run.vocab, texts[:1], 5, None, prior)
            rows[model] = {
                "params": run.model.num_params(),
                "classify 10 texts (s)": timed(lambda: run.classify(texts[:10])),
                "score 100 texts under any label (s)": timed(lambda: run.score(texts)),
                "explain 1 text under any label (s)": timed(lambda: explain_many(run.model, run.vocab, texts[:1], 5, None, prior)),
            }
            print(model, json.dumps(rows[model]), flush=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.tag] = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit(),
                         "command": f"python benchmarks/label_scoring.py --labels {args.labels} --models {' '.join(args.models)} --tag {args.tag}",
                         "labels": args.labels, "threads": 1, "gflops": machine_gflops(), "rows": rows}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results[args.tag], indent=2))


if __name__ == "__main__":
    main()
