"""Steps per second of a short mlp run, the training loop's own cost: the same run under this
checkout's src/ and another's (--other PATH/src), interleaved, each in its own process. Results
are appended to benchmarks/results/loop_speed.md.

    python benchmarks/loop_speed.py --other /tmp/before/src --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "names.txt"
RUN = """
import json, sys, tempfile
import makemore
out = tempfile.mkdtemp()
r = makemore.train(sys.argv[1], model="mlp", out=out + "/run", quiet=True, log=lambda m: None, max_steps={steps},
                   eval_interval={steps}, threads=1)
m = json.loads(open(out + "/run/metrics.jsonl").read().splitlines()[-1])
print(json.dumps({{"steps_per_s": r.steps / m["train_seconds"]}}))
"""


def once(src: Path, steps: int, data: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", RUN.format(steps=steps), str(data)], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["steps_per_s"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--other", type=Path, required=True, help="another checkout's src/ to compare with")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", type=Path, default=DATA)
    args = p.parse_args()
    here, there = [], []
    for _ in range(args.repeats):
        there.append(once(args.other, args.steps, args.data))
        here.append(once(ROOT / "src", args.steps, args.data))
    best = lambda xs: max(xs)  # noqa: E731 - the least disturbed run on a shared machine
    line = (f"mlp, {args.steps} steps, 1 thread: {args.other}: {best(there):,.0f} steps/s; this checkout: "
            f"{best(here):,.0f} steps/s (best of {args.repeats}; ratio {best(here) / best(there):.3f})")
    print(line)
    results = ROOT / "benchmarks" / "results" / "loop_speed.md"
    results.parent.mkdir(exist_ok=True)
    with open(results, "a") as f:
        f.write(f"- {line}\n")


if __name__ == "__main__":
    main()
