"""One torch thread against two, for every model: training steps per second on names.txt.

    python benchmarks/threads.py                    # every model, 3 alternating pairs of 300 steps
    python benchmarks/threads.py --models lstm transformer --pairs 5

Each run is its own process (`makemore train --threads N`, the model's registry defaults), and
the 1-thread and 2-thread runs of a model alternate, so both see the same machine. Speed is
steps over training seconds (metrics.jsonl's `elapsed` at the last step, evaluation left out).
Writes benchmarks/results/threads.json and .md and prints the table. Run it on a quiet machine:
beside a busy process two threads spin-wait on each other, which is what the default
(device.cpu_threads) avoids.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from models import machine_gflops, seconds_per_step  # noqa: E402

from makemore.models import REGISTRY  # noqa: E402

RESULTS = HERE / "results" / "threads.json"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=[m for m, spec in REGISTRY.items() if not spec.cls.closed_form])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--steps", type=int, default=300)
    args = p.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            gflops = machine_gflops()
            times = {1: [], 2: []}
            for _ in range(args.pairs):
                for threads in (1, 2):
                    times[threads].append(seconds_per_step(["--model", model, "--threads", str(threads)], args.steps, Path(tmp) / model))
            one, two = statistics.median(times[1]), statistics.median(times[2])
            rows[model] = {"ms_per_step_1": round(one * 1000, 2), "ms_per_step_2": round(two * 1000, 2),
                           "speedup_2_over_1": round(one / two, 2), "gflops": gflops,
                           "runs_ms": {t: [round(s * 1000, 2) for s in v] for t, v in times.items()}}
            print(model, json.dumps(rows[model]), flush=True)
    out = {"command": f"python benchmarks/threads.py --models {' '.join(args.models)} --pairs {args.pairs} --steps {args.steps}",
           "rows": rows}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    lines = ["| model | ms/step, 1 thread | ms/step, 2 threads | 2 threads' speed-up | GFLOP/s |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {m} | {r['ms_per_step_1']} | {r['ms_per_step_2']} | {r['speedup_2_over_1']}x | {r['gflops']} |" for m, r in rows.items()]
    lines.append(f"\nmedians of {args.pairs} alternating runs of {args.steps} steps each, registry defaults; "
                 "GFLOP/s: the machine's float32 matmul speed before each model (this process's default threads)")
    RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
