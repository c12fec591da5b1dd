"""Train models with their registry defaults on the lectures' names.txt and record how they do.

    python benchmarks/models.py                      # every model
    python benchmarks/models.py --models bigram mlp  # some; other rows of the results file are kept

Each model is trained with `makemore.train` under the guide's protocol (seeded 80/10/10 split,
exact NLL over whole splits), then timed sampling 10,000 items. Rows go to
benchmarks/results/models.json (merged by model name) and a Markdown table beside it that
the README quotes (between its `models.md` markers, rewritten here).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import makemore
from makemore.models import REGISTRY

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
NAMES = SHARED / "data" / "names.txt"
MAKEMORE_PY = SHARED / "anchors" / "makemore" / "makemore.py"  # makemore.py (MIT): run only in processes of its own
RESULTS = HERE / "results" / "models.json"
README = HERE.parent / "README.md"
START, END = "<!-- models.md: start -->", "<!-- models.md: end -->"
# figures the seeds and the guide report, for the table's last column
REFERENCE = {
    "bigram": "train 2.4548 / val 2.4533 / test 2.4584 (guide)",
    "bigram-nn": "train ~2.46 (seed 002, all words)",
    "ngram": "test 1.9934 (Kneser-Ney, one discount 0.75, n=5: issue 22)",
    "mlp": "val 2.1244 (seed 001: BatchNorm + Kaiming, 100K steps)",
    "mlp-200k": "val 2.1086 (lecture 3: the same model, 200K steps)",
    "wavenet": "val 1.993 (lecture 5)",
    "transformer": "test ~1.92 (makemore README)",
}
# rows that train a registry model with other settings: label -> (model, options)
VARIANTS = {"mlp-200k": ("mlp", {"max_steps": 200_000}), "lstm-no-ema": ("lstm", {"ema": 0.0})}


def machine_gflops(seconds: float = 2.0) -> float:
    """Float32 matrix-multiply speed of this machine with the current torch threads, measured
    before each row, so rows from machines of different speed (or beside other work) can be
    told apart: what a time budget buys depends on it."""
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    a @ b  # warm up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return round(2 * 512**3 * n / (time.perf_counter() - start) / 1e9, 1)


def seconds_per_step(flags: list[str], steps: int, out: Path, env: dict | None = None, warmup: int | None = None) -> float:
    """Train `steps` steps of `makemore train FLAGS` on names.txt in a process of its own and give
    its seconds per step, evaluation left out: over the whole run (metrics.jsonl's `elapsed` at the
    last step, warm-up included), or with `warmup` (which must divide `steps`) over the steps after
    the first `warmup` (metrics.jsonl's `train_seconds`, which leaves out the evaluations at every
    `warmup` steps that mark them)."""
    interval = warmup or steps
    proc = subprocess.run([sys.executable, "-m", "makemore", "train", "--data", str(NAMES), "--out", str(out), "--force",
                           "--max-steps", str(steps), "--eval-interval", str(interval), "--quiet", "--samples", "0", *flags],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"makemore train {' '.join(flags)} failed: {proc.stderr.strip()}")
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    if warmup is None:
        return metrics[-1]["elapsed"] / metrics[-1]["step"]
    first, last = metrics[0], metrics[-1]
    return (last["train_seconds"] - first["train_seconds"]) / (last["step"] - first["step"])


def bench(name: str, data: Path, time_budget: float | None, workdir: Path) -> dict:
    model, options = VARIANTS.get(name, (name, {}))
    gflops = machine_gflops()
    result = makemore.train(data=str(data), model=model, out=workdir / name, quiet=True, log=print,
                            time_budget=time_budget, **options)
    run = makemore.load(result.run_dir, device="cpu")
    run.sample(100, seed=0)  # warm up
    start = time.perf_counter()
    run.sample(10_000, seed=0)
    sampling = 10_000 / (time.perf_counter() - start)
    return {
        "model": name,
        "params": run.model.num_params(),
        "steps": result.steps,
        "train_seconds": round(result.seconds, 1),
        "time_budget": time_budget,
        # the threads training used (summary.json): the trainer restores the process's own afterwards
        "torch_threads": json.loads((result.run_dir / "summary.json").read_text())["threads"],
        "machine_gflops": gflops,
        **{f"{s}_nll": round(r.nll, 4) for s, r in result.final.items()},
        "sample_items_per_sec": round(sampling),
        "reference": REFERENCE.get(name, ""),
    }


def markdown(rows: list[dict]) -> str:
    head = ("| model | params | steps | train s | threads | GFLOP/s | train NLL | val NLL | test NLL | samples/s | reference |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
    return head + "".join(
        f"| {r['model']} | {r['params']:,} | {r['steps']:,} | {r['train_seconds']}{' (cap)' if r.get('time_budget') and r['train_seconds'] >= r['time_budget'] else ''} | {r['torch_threads']} | {r.get('machine_gflops', '–')} | "
        f"{r['train_nll']:.4f} | {r['val_nll']:.4f} | "
        f"{r['test_nll']:.4f} | {r['sample_items_per_sec']:,} | {r['reference']} |\n"
        for r in rows
    )


def save(new: dict, labels: list[str]) -> str:
    """Merge a row into the results file (re-read first, so parallel runs of this script for
    different models do not drop each other's rows), rewrite the table and the README's copy."""
    rows = {r["model"]: r for r in (json.loads(RESULTS.read_text())["rows"] if RESULTS.exists() else [])}
    rows[new["model"]] = new
    ordered = [rows[n] for n in labels if n in rows]
    meta = {"torch": torch.__version__, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "protocol": "names.txt, seeded 80/10/10 split (seed 42), exact NLL over whole splits"}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "rows": ordered}, indent=2) + "\n")
    table = markdown(ordered)
    RESULTS.with_suffix(".md").write_text(table)
    readme = README.read_text()
    if START in readme and END in readme:
        head, rest = readme.split(START, 1)
        README.write_text(head + START + "\n" + table + END + rest.split(END, 1)[1])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    labels = [label for m in REGISTRY for label in [m] + [v for v, (base, _) in VARIANTS.items() if base == m]]
    parser.add_argument("--models", nargs="+", default=labels, choices=labels)
    parser.add_argument("--data", type=Path, default=NAMES)
    parser.add_argument("--time-budget", type=float, default=None, help="seconds per model (default: its max_steps)")
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"benchmark data not found at {args.data}; pass --data PATH to the lectures' names.txt")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            row = bench(name, args.data, args.time_budget, Path(tmp))
            print(json.dumps(row))
            table = save(row, labels)
    print(table)


if __name__ == "__main__":
    main()
