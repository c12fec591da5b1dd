"""The Kneser-Ney n-gram on the lectures' names.txt: each order's NLL, its size and how long it takes to fit.

    python benchmarks/ngram.py                   # orders 2..7 and the default (order chosen on val), 1 thread
    python benchmarks/ngram.py --orders 3 5 --threads 2

Under the guide's protocol (seeded 80/10/10 split, exact NLL over whole splits), each order is fitted
to the train split (`--repeats` times; the median seconds), then evaluated on every split. The default
(no --order: every order from 1 up is tried on val until two past the best) is timed the same way.
Writes benchmarks/results/ngram.json and prints it, with the machine's float32 matmul GFLOP/s
before and after (benchmarks/models.py's machine_gflops): fit seconds compare only at similar speeds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from models import NAMES, machine_gflops  # noqa: E402  (benchmarks/models.py)

from makemore.data import Dataset  # noqa: E402
from makemore.evaluate import evaluate  # noqa: E402
from makemore.models import REGISTRY, build  # noqa: E402

RESULTS = HERE / "results" / "ngram.json"
# the figures the n-gram is measured against (issue 22): test NLL on the same split
PEERS = {"kneser_ney_one_discount_0.75_n5": 1.9934, "makemore.py_best_checkpoint": 2.005}


def fit_timed(config, data: Dataset, repeats: int):
    """The model fitted `repeats` times (the last one kept), the median seconds, and its choice of order."""
    seconds = []
    for _ in range(repeats):
        model = build("ngram", config)
        began = time.perf_counter()
        choice = model.fit(data.packed("train"), data.packed("val"))
        seconds.append(time.perf_counter() - began)
    return model, statistics.median(seconds), choice


def row(model, seconds: float, data: Dataset) -> dict:
    return {"order": model.config.order, "fit_seconds": round(seconds, 4), "contexts": model.config.ngram_contexts,
            "ngrams": model.config.ngrams,
            **{f"{s}_nll": round(evaluate(model, data.packed(s), s).nll, 4) for s in ("train", "val", "test")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=NAMES)
    parser.add_argument("--orders", type=int, nargs="+", default=[2, 3, 4, 5, 6, 7])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"benchmark data not found at {args.data}; pass --data PATH to the lectures' names.txt")
    torch.set_num_threads(args.threads)
    data = Dataset.load(str(args.data))
    config = replace(REGISTRY["ngram"].config, vocab_size=len(data.vocab), max_len=data.max_len)
    gflops = machine_gflops()
    build("ngram", replace(config, order=3)).fit(data.packed("train"))  # warm up
    rows = [row(*fit_timed(replace(config, order=n), data, args.repeats)[:2], data) for n in args.orders]
    model, seconds, choice = fit_timed(config, data, args.repeats)
    default = {**row(model, seconds, data), "tried_on_val": choice["order"]["tried"]}
    out = {
        "meta": {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "torch": torch.__version__,
                 "machine": f"{platform.machine()}, {os.cpu_count()} cores", "threads": args.threads,
                 "gflops_before": gflops, "gflops_after": machine_gflops(), "repeats": args.repeats,
                 "data": args.data.name, "chars": {s: data.packed(s).chars for s in ("train", "val", "test")},
                 "protocol": "seeded 80/10/10 split (seed 42), fitted on train, exact NLL over whole splits"},
        "orders": rows,
        "default": default,
        "peers_test_nll": PEERS,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
