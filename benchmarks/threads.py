"""One torch thread against two, for every model: training steps per second on names.txt.

    python benchmarks/threads.py                    # every model, 3 alternating pairs of 300 steps
    python benchmarks/threads.py --models lstm transformer --pairs 5

Each run is its own process (`makemore train --threads N`, the model's registry defaults), and
the 1-thread and 2-thread runs of a model alternate, so both see the same machine. Speed is
steps over training seconds (metrics.jsonl's `elapsed` at the last step, evaluation left out).
Models timed with dropout from the first step (--dropout-from 0; the default lstm's first 3,000
steps go without, and cost less): the step most of a run takes. Writes
benchmarks/results/threads.json and .md and prints the table; models not measured in this run
keep their rows (each row says how it was measured). Run it on a quiet machine:
beside a busy process two threads spin-wait on each other, which is what the default
(device.cpu_threads) avoids.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from models import machine_gflops, seconds_per_step  # noqa: E402

from makemore.models import REGISTRY  # noqa: E402

RESULTS = HERE / "results" / "threads.json"


def table(rows: dict) -> str:
    lines = ["| model | ms/step, 1 thread | ms/step, 2 threads | 2 threads' speed-up | GFLOP/s | runs |",
             "|---|---:|---:|---:|---:|---|"]
    for m, r in rows.items():
        runs = f"{r['pairs']} x {r['steps']} steps, {r['date']}"
        lines.append(f"| {m} | {r['ms_per_step_1']} | {r['ms_per_step_2']} | {r['speedup_2_over_1']}x | {r['gflops']} | {runs} |")
    lines.append("\nmedians of alternating 1- and 2-thread runs (runs: pairs x steps), registry defaults with dropout from "
                 "the first step; GFLOP/s: the machine's float32 matmul speed before each model (this process's default threads)")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=[m for m, spec in REGISTRY.items() if not spec.cls.closed_form])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--steps", type=int, default=300)
    args = p.parse_args()
    rows = {}
    if RESULTS.exists():  # keep the rows of models not measured now, each with how it was measured
        rows.update(json.loads(RESULTS.read_text())["rows"])
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            gflops = machine_gflops()
            times = {1: [], 2: []}
            for _ in range(args.pairs):
                for threads in (1, 2):
                    flags = ["--model", model, "--threads", str(threads), "--dropout-from", "0"]
                    times[threads].append(seconds_per_step(flags, args.steps, Path(tmp) / model))
            one, two = statistics.median(times[1]), statistics.median(times[2])
            rows[model] = {"ms_per_step_1": round(one * 1000, 2), "ms_per_step_2": round(two * 1000, 2),
                           "speedup_2_over_1": round(one / two, 2), "gflops": gflops,
                           "runs_ms": {t: [round(s * 1000, 2) for s in v] for t, v in times.items()},
                           "command": f"python benchmarks/threads.py --models {model} --pairs {args.pairs} --steps {args.steps}",
                           "pairs": args.pairs, "steps": args.steps, "date": time.strftime("%Y-%m-%d")}
            print(model, json.dumps(rows[model]), flush=True)
    out = {"rows": rows}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    RESULTS.with_suffix(".md").write_text(table(rows))
    print(table(rows), end="")


if __name__ == "__main__":
    main()
