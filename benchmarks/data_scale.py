"""Memory and time to the first step of `makemore train` on large data files (issue 21).

    python benchmarks/data_scale.py                                   # 300K, 3M, 10M lines and 300K + one long item
    python benchmarks/data_scale.py --lines 300000 3000000 --before /tmp/old/src   # and another checkout beside it
    python benchmarks/data_scale.py --lines 100000000 --no-long        # the 1 GB list
    python benchmarks/data_scale.py --budget 120 --lines 3000000       # the default model in a time budget

Each file is built here: items of 3 to 15 random lowercase letters (seeded), one a line; the
"+ long" case is the 300K file with one item of 900 characters in the middle. Every case runs

    makemore train --data F --model mlp --max-steps 200 --eval-interval 100000

as its own process (one thread), twice (with --stop-after-training, each ends at its 200th step,
before the evaluations of the whole splits that follow, whose cost is issue 21's item 3): first with an empty cache ($MAKEMORE_CACHE), which
prepares the file, then again, which maps what the first run prepared. Each run reports its wall
time, its time to the first training step (process start to the first step event, heard through
the events the CLI's run emits) and its peak resident set size (os.wait4's ru_maxrss, the
kernel's figure, as /usr/bin/time -v gives it). The machine's float32 matmul speed is recorded
beside them (benchmarks/models.py). Results go to benchmarks/results/data_scale.json.

With --budget S, each file instead trains the default model with `--time-budget S` (one thread, the
cache prepared first): the run's training seconds (its interval evaluations and the checkpoint after
its last step included) and its final evaluation's seconds as summary.json and the CLI print them,
the evaluations metrics.jsonl holds and what they measured (a seeded sample past 1M characters), and
the characters of the val and test splits the final evaluation reads (train's figure is its last
checkpoint's sample's), beside the seconds `makemore eval` takes for one pass over each.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from models import machine_gflops  # noqa: E402

SRC = HERE.parent / "src"
RESULTS = HERE / "results" / "data_scale.json"
TRAIN = ["train", "--model", "mlp", "--max-steps", "200", "--eval-interval", "100000"]
LONG = 900

# The CLI, with the moment of the first step written to stderr: the time from process start, which
# the parent passes in (DATA_SCALE_T0), so the interpreter's and PyTorch's imports are counted too.
LAUNCH = """
import os, sys, time
from makemore.training import events
emit = events.Events.emit
def timed(self, event, done=[]):
    if isinstance(event, events.Step) and (not done or event.step == 200):
        done.append(1)
        sys.stderr.write(f"\\nSTEP {event.step} {time.time() - float(os.environ['DATA_SCALE_T0']):.3f}\\n")
        if event.step == 200 and os.environ.get("DATA_SCALE_STOP"):
            sys.stderr.flush()
            os._exit(0)  # --stop-after-training: the evaluations that follow are not waited for
    return emit(self, event)
events.Events.emit = timed
from makemore.cli import main
sys.exit(main(sys.argv[1:]))
"""


def build(path: Path, lines: int, long_item: bool = False, seed: int = 0) -> None:
    """`lines` items of 3-15 random letters, written a million lines at a time."""
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        for start in range(0, lines, 1_000_000):
            n = min(1_000_000, lines - start)
            lengths = rng.integers(3, 16, n)
            buf = rng.integers(ord("a"), ord("z") + 1, int((lengths + 1).sum()), dtype=np.uint8)
            buf[np.cumsum(lengths + 1) - 1] = ord("\n")
            if long_item and start <= lines // 2 < start + n:
                cut = int(np.cumsum(lengths + 1)[lines // 2 - start])
                f.write(buf[:cut].tobytes())
                f.write(rng.integers(ord("a"), ord("z") + 1, LONG, dtype=np.uint8).tobytes() + b"\n")
                buf = buf[cut:]
            f.write(buf.tobytes())


def run(src: Path, data: Path, out: Path, cache: Path, stop: bool = False) -> dict:
    """One `makemore train` process: wall seconds, seconds to the first and the 200th step, peak RSS in MB."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "MAKEMORE_CACHE": str(cache),
           "DATA_SCALE_T0": repr(time.time()), **({"DATA_SCALE_STOP": "1"} if stop else {})}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, *TRAIN, "--data", str(data), "--out", str(out), "--force"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"training on {data} failed ({proc.returncode}):\n{err[-3000:]}")
    steps = {int(step): float(t) for step, t in re.findall(r"STEP (\d+) ([\d.]+)\n", err)}  # amid the progress bar's \r
    return {"wall_s": round(wall, 1), "first_step_s": steps.get(1), "step_200_s": steps.get(200),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), **({"stopped_after_step_200": True} if stop else {})}


def budget_case(data: Path, out: Path, cache: Path, budget: float) -> dict:
    """The default model in `budget` seconds on `data`, the file prepared beforehand (as a second run finds it)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MAKEMORE_CACHE": str(cache), "PYTHONPATH": str(SRC)}
    cli = [sys.executable, "-m", "makemore"]
    subprocess.run([*cli, "train", "--data", str(data), "--model", "bigram", "--out", str(out), "--force", "--quiet",
                    "--samples", "0"], env=env, check=True, capture_output=True)  # prepares the cache
    start = time.perf_counter()
    proc = subprocess.run([*cli, "train", "--data", str(data), "--out", str(out), "--force", "--quiet", "--samples", "0",
                           "--threads", "1", "--time-budget", f"{budget:g}"], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"training on {data} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    row = {"budget_s": budget, "model": json.loads((out / "config.json").read_text())["model"], "steps": summary["step"],
           "training_s": summary["seconds"], "final_evaluation_s": summary["final_evaluation_seconds"],
           "wall_s": round(wall, 1), "evaluations": len(metrics), "interval_sampled": metrics[-1].get("sampled"),
           "final_chars": {s: summary[s]["chars"] for s in ("train", "val", "test")},
           "final_train_sample": summary["train"].get("sample"), "printed": proc.stdout.splitlines()[0],
           "test_nll": summary["test"]["nll"]}
    for split in ("val", "test"):  # one pass over the split, as `makemore eval` makes it
        began = time.perf_counter()
        subprocess.run([*cli, "eval", str(out), "--split", split], env=env, check=True, capture_output=True)
        row[f"eval_{split}_s"] = round(time.perf_counter() - began, 1)
    return row


def budget_table(results: dict) -> str:
    lines = ["| lines | model | budget | training (evaluations included) | steps | evaluations | final evaluation | "
             "one `makemore eval` of val + test |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.get("budget_cases", {}).items():
        lines.append(f"| {name} | {r['model']} | {r['budget_s']:g} s | {r['training_s']:.1f} s | {r['steps']:,} | "
                     f"{r['evaluations']} | {r['final_evaluation_s']:.1f} s | {r['eval_val_s'] + r['eval_test_s']:.1f} s |")
    any_row = next(iter(results.get("budget_cases", {}).values()), None)
    if any_row:
        lines.append(f"\n`makemore train --data F --time-budget B --threads 1`, the file prepared by a run before it; "
                     f"{any_row['gflops_fp32_matmul']} GFLOP/s (float32 matmul), load average {any_row['load_average_1min']}. "
                     "`makemore eval` includes its process start and the map of the prepared file.")
    return "\n".join(lines) + "\n"


def table(results: dict) -> str:
    """The results as the README's table: peak RSS and time to the first step, first run, from the cache, before."""
    def cell(r: dict | None, key: str, unit: str) -> str:
        return "–" if not r or r.get(key) is None else f"{r[key]:,.1f}{unit}" if unit == " s" else f"{r[key] / 1024:.2f} GB"

    lines = ["| lines | file | peak RSS: first run / from cache / before | first step: first run / from cache / before | wall: first run / from cache / before |",
             "|---|---:|---:|---:|---:|"]
    for name, row in results["cases"].items():
        runs = [row.get("first_run"), row.get("from_cache"), row.get("before")]
        rss = " / ".join(cell(r, "peak_rss_mb", "") for r in runs)
        first = " / ".join(cell(r, "first_step_s", " s") for r in runs)
        wall = " / ".join(cell(r, "wall_s", " s") for r in runs)
        stopped = " (to step 200)" if (row.get("first_run") or {}).get("stopped_after_step_200") else ""
        lines.append(f"| {name} | {row['file_mb']:,.0f} MB | {rss} | {first} | {wall}{stopped} |")
    m = results["machine"]
    lines.append(f"\n`{results['command']}`, one thread, {m['cpus']} cores at {m['gflops_fp32_matmul']} GFLOP/s "
                 f"(float32 matmul; load average {m['load_average_1min']} beside other work). `benchmarks/data_scale.py`.")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, nargs="+", default=[300_000, 3_000_000, 10_000_000])
    p.add_argument("--no-long", action="store_true", help="skip the 300K + one long item case")
    p.add_argument("--before", type=Path, help="another checkout's src/ to measure beside this one (one run each)")
    p.add_argument("--stop-after-training", action="store_true",
                   help="end each run at its 200th step, without the evaluations after it (for the largest files)")
    p.add_argument("--tmp", type=Path, help="where to build the files (default: the system's temporary folder)")
    p.add_argument("--budget", type=float, help="train the default model with --time-budget BUDGET on each --lines file")
    args = p.parse_args()
    if args.budget:
        return main_budget(args)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.setdefault("cases", {})
    cases = [(f"{n:,} lines", n, False) for n in args.lines]
    if not args.no_long:
        cases = [("300,000 lines", 300_000, False), (f"300,000 lines + one of {LONG} characters", 300_000, True)] + \
                [c for c in cases if c[1] != 300_000]
    gflops = machine_gflops()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        for name, lines, long_item in cases:
            data = tmp / "data.txt"
            build(data, lines, long_item)
            row = {"lines": lines, "long_item": long_item, "file_mb": round(data.stat().st_size / 2**20, 1)}
            cache = tmp / "cache"
            stop = args.stop_after_training
            row["first_run"] = run(SRC, data, tmp / "run", cache, stop)
            row["from_cache"] = run(SRC, data, tmp / "run", cache, stop)
            if args.before:
                row["before"] = run(args.before.resolve(), data, tmp / "run", tmp / "before-cache", stop)
                row["before_src"] = str(args.before)
            elif "before" in results["cases"].get(name, {}):  # measured by an earlier invocation: kept, with its date
                earlier = results["cases"][name]
                row.update({k: earlier[k] for k in ("before", "before_src") if k in earlier}, before_measured=earlier["measured"])
            subprocess.run(["rm", "-rf", str(cache), str(tmp / "before-cache"), str(tmp / "run")], check=True)
            row["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            row["gflops_fp32_matmul"], row["load_average_1min"] = gflops, round(os.getloadavg()[0], 2)  # each case's machine
            results["cases"][name] = row
            print(name, json.dumps(row), flush=True)
            data.unlink()
    results["machine"] = {"cpus": os.cpu_count(), "gflops_fp32_matmul": gflops, "threads": 1,
                          "load_average_1min": round(os.getloadavg()[0], 2)}
    results["command"] = "makemore " + " ".join(TRAIN[:1] + ["--data", "F"] + TRAIN[1:])
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    RESULTS.with_suffix(".md").write_text(table(results) + ("\n" + budget_table(results) if results.get("budget_cases") else ""))
    print(json.dumps(results, indent=2))
    print(table(results))


def main_budget(args) -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"cases": {}}
    results.setdefault("budget_cases", {})
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        for lines in args.lines:
            data = tmp / "data.txt"
            build(data, lines)
            gflops = machine_gflops()
            row = budget_case(data, tmp / "run", tmp / "cache", args.budget)
            row.update(measured=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), gflops_fp32_matmul=gflops,
                       load_average_1min=round(os.getloadavg()[0], 2))
            results["budget_cases"][f"{lines:,} lines"] = row
            print(json.dumps(row), flush=True)
            subprocess.run(["rm", "-rf", str(tmp / "cache"), str(tmp / "run"), str(data)], check=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    RESULTS.with_suffix(".md").write_text(table(results) + "\n" + budget_table(results))
    print(budget_table(results))


if __name__ == "__main__":
    main()
