"""Scoring against many labels: one pass per label (how makemore did it before) against every
label's rows in one batched pass, on a run with thousands of labels, measured in one run.

    python benchmarks/label_scoring.py                  # 2,000 labels, bigram and lstm
    python benchmarks/label_scoring.py --labels 500 --models lstm

The data is the built-in names, each given one of `--labels` labels in turn (`emma<TAB>L0`,
`olivia<TAB>L1`, ...). Every label is a token of the vocabulary, so a model's output grows with
them, and an item scored "under any label" (`Run.score` without a label, `Run.classify`) needs
its NLL given every label: the (texts, labels) table timed here. The bigram is counted; the lstm
(makemore's default settings) is trained for one step: the timings depend on its size, not on
what it learned. The explanation under any label (what the page shows) is timed with every
label's log-probabilities held at once, as before, and a chunk of labels at a time, as now. The
last case is the largest request makemore serve takes for such a run (`Limits.max_pairs` items x
labels, scored and explained). Each case is timed once, after an untimed warm-up on one text.
Writes benchmarks/results/label_scoring.json and prints it.
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
from makemore import explain
from makemore.data import resolve_data
from makemore.sample import nll_by_label, score
from makemore.serve import Limits

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "label_scoring.json"
sys.path.insert(0, str(HERE))
from models import machine_gflops  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 3)


def per_label(run, texts: list[str]) -> torch.Tensor:
    """The table as makemore built it before: the texts encoded and scored once per label."""
    return torch.tensor([[s.nll for s in score(run.model, run.vocab, texts, label)] for label in run.labels], dtype=torch.float64).T


def explain_any(run, texts: list[str], chunk: float):
    explain.LOG_PROBS_PER_CHUNK = chunk
    return explain.explain_many(run.model, run.vocab, texts, 5, None, run.label_prior())


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--labels", type=int, default=2000)
    p.add_argument("--models", nargs="+", default=["bigram", "lstm"])
    args = p.parse_args()
    torch.set_num_threads(1)  # as makemore serve runs inference
    names = resolve_data("names").read_text(encoding="utf-8").split()
    chunk = explain.LOG_PROBS_PER_CHUNK
    largest = max(1, Limits.max_pairs // args.labels)
    rows = {}
    gflops = machine_gflops()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "many-labels.txt"
        data.write_text("".join(f"{name}\tL{i % args.labels}\n" for i, name in enumerate(names)), encoding="utf-8")
        for model in args.models:
            steps = {} if model == "bigram" else {"max_steps": 1, "eval_interval": 1}
            makemore.train(data=str(data), model=model, out=Path(tmp) / model, device="cpu", quiet=True, log=lambda m: None, **steps)
            run = makemore.load(Path(tmp) / model, device="cpu")
            assert len(run.labels) == args.labels
            per_label(run, names[:1]), nll_by_label(run.model, run.vocab, names[:1]), explain_any(run, names[:1], chunk)  # warm up
            row = {"params": run.model.num_params()}
            for n in (10, 100):
                before, after = timed(lambda: per_label(run, names[:n])), timed(lambda: nll_by_label(run.model, run.vocab, names[:n]))
                row[f"NLL given each label, {n} texts"] = {"per label (s)": before, "batched (s)": after, "ratio": round(before / after, 2)}
            before, after = timed(lambda: explain_any(run, names[:1], 10**18)), timed(lambda: explain_any(run, names[:1], chunk))
            row["explain 1 text under any label"] = {"all labels at once (s)": before, "chunked (s)": after, "ratio": round(before / after, 2)}
            row[f"serve's largest request: score and explain {largest} texts under any label (s)"] = timed(
                lambda: (run.score(names[:largest]), explain_any(run, names[:largest], chunk)))
            rows[model] = row
            print(model, json.dumps(row), flush=True)
    results = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit(),
               "command": f"python benchmarks/label_scoring.py --labels {args.labels} --models {' '.join(args.models)}",
               "labels": args.labels, "threads": 1, "gflops_before": gflops, "gflops_after": machine_gflops(), "rows": rows}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
