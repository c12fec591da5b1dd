"""makemore.py and makemore side by side: training speed on names.txt, alternating in the same minutes.

    python benchmarks/vs_makemore.py                  # 3 pairs of 300 steps, 2 torch threads each
    python benchmarks/vs_makemore.py --pairs 5 --steps 500 --threads 1

The reference implementation (../shared/anchors/makemore/makemore.py, MIT) runs as a separate
process with its own defaults: its Transformer (4 layers, 64 wide, 4 heads), batch 32, AdamW at
5e-4, 4 data-loader workers. It needs TensorBoard installed (it imports it):
pip install 'makemore[tensorboard]'. Beside it, four runs of ours, each in its own process:

- same: our transformer at the same size, batch 32, AdamW 5e-4, weight decay 0.01, constant
  rate, no dropout, no weight average: the same work per step;
- same-compiled: the same with --compile (torch.compile; its compile time falls in the warm-up);
- transformer: our transformer with its own defaults (batch 128, dropout, warm-up, cosine);
- default: our default model (lstm) with its own defaults, but with dropout from the first step
  (--dropout-from 0): the cost of its steps from step 3,000 on, most of its run; the 3,000 before
  go without dropout and cost less.

Each pair of the reference and ours runs back to back, in the same minutes, and the pairs repeat,
because machines of this kind differ up to 2x in speed from day to day and minute to minute.
Speeds: the reference's median "step time" after 20 warm-up steps (its own timer: batch, forward,
backward, update); ours, the mean after 50 warm-up steps (metrics.jsonl's `train_seconds`, which
leaves evaluation out, from step 50 to the last): a mean counts the slow steps a median skips. Characters per second count real predicted characters: a batch
of b random training names holds b x (mean name length + 1) of them on average, in both. Writes
benchmarks/results/vs_makemore.json and .md and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from models import MAKEMORE_PY, NAMES, machine_gflops, seconds_per_step  # noqa: E402

from makemore.data import Dataset  # noqa: E402

RESULTS = HERE / "results" / "vs_makemore.json"
STEP = re.compile(r"^step (\d+) \| loss [\d.]+ \| step time ([\d.]+)ms")
WARMUP = 20  # the reference's steps left out
OUR_WARMUP = 50  # ours: --steps must be a multiple
SAME = ["--model", "transformer", "--batch-size", "32", "--lr", "5e-4", "--weight-decay", "0.01", "--lr-schedule",
        "constant", "--warmup-steps", "0", "--dropout", "0", "--ema", "0"]
OURS = {
    "same": SAME,
    "same-compiled": [*SAME, "--compile"],
    "transformer": ["--model", "transformer"],
    "default": ["--dropout-from", "0"],  # its steps once dropout is on (its first 3,000 go without, faster)
}
BATCH = {"same": 32, "same-compiled": 32, "transformer": 128, "default": 32, "reference": 32}


def reference(steps: int, env: dict, workdir: Path) -> float:
    """Median seconds per step of makemore.py after its warm-up."""
    proc = subprocess.run([sys.executable, str(MAKEMORE_PY), "-i", str(NAMES), "-o", str(workdir / "ref"), "--max-steps", str(steps)],
                          capture_output=True, text=True, env=env, cwd=workdir)
    times = [float(m[2]) / 1000 for line in proc.stdout.splitlines() if (m := STEP.match(line)) and int(m[1]) >= WARMUP]
    if proc.returncode != 0 or not times:
        raise SystemExit(f"makemore.py failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--steps", type=int, default=300, help="steps per run (the reference evaluates at 500: stay below)")
    p.add_argument("--threads", type=int, default=2, help="torch threads of every process (OMP_NUM_THREADS)")
    args = p.parse_args()
    if args.steps % OUR_WARMUP or args.steps <= OUR_WARMUP:
        p.error(f"--steps must be a multiple of {OUR_WARMUP} above it (our runs are timed after {OUR_WARMUP} warm-up steps)")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    train = Dataset.load(str(NAMES)).splits["train"]
    chars_per_item = sum(len(w) + 1 for w in train) / len(train)
    runs: dict[str, list[float]] = {"reference": [], **{name: [] for name in OURS}}
    gflops = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            gflops.append(machine_gflops())
            runs["reference"].append(reference(args.steps, env, Path(tmp)))
            for name in OURS:
                runs[name].append(seconds_per_step(OURS[name], args.steps, Path(tmp) / name, env, OUR_WARMUP))
            print(f"pair {i + 1}: " + ", ".join(f"{k} {v[-1] * 1000:.1f} ms/step" for k, v in runs.items()), flush=True)
    rows = {}
    for name, seconds in runs.items():
        step = statistics.median(seconds)
        rows[name] = {"ms_per_step": [round(s * 1000, 2) for s in seconds], "median_ms_per_step": round(step * 1000, 2),
                      "steps_per_sec": round(1 / step, 1), "batch": BATCH[name],
                      "chars_per_sec": round(BATCH[name] * chars_per_item / step)}
    for name in OURS:  # each pair's own ratio, then the median of those
        ratios = [r / o * BATCH[name] / BATCH["reference"] for r, o in zip(runs["reference"], runs[name])]
        rows[name]["chars_per_sec_vs_reference"] = round(statistics.median(ratios), 2)
    out = {"command": f"python benchmarks/vs_makemore.py --pairs {args.pairs} --steps {args.steps} --threads {args.threads}",
           "threads": args.threads, "gflops": gflops, "chars_per_item": round(chars_per_item, 3), "rows": rows,
           "ours": {name: " ".join(flags) or "(registry defaults: lstm)" for name, flags in OURS.items()}}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    lines = ["| run | batch | ms/step (median) | steps/s | chars/s | chars/s vs makemore.py |", "|---|---:|---:|---:|---:|---:|"]
    for name, row in rows.items():
        label = "makemore.py (its defaults)" if name == "reference" else f"ours: {name}"
        ratio = row.get("chars_per_sec_vs_reference", 1.0)
        lines.append(f"| {label} | {row['batch']} | {row['median_ms_per_step']} | {row['steps_per_sec']} | {row['chars_per_sec']:,} | {ratio}x |")
    lines.append(f"\n{args.pairs} alternating pairs of {args.steps} steps, {args.threads} torch threads each; "
                 f"matmul GFLOP/s before each pair: {', '.join(map(str, gflops))}.")
    RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
