"""Time to makemore.py's best: how soon makemore.py and our default reach the test NLL that
makemore.py's best checkpoint scores, on one machine, one after the other.

    python benchmarks/time_to_target.py                 # 12,000 reference steps, 2 torch threads
    python benchmarks/time_to_target.py --reference-steps 15000 --threads 1
    python benchmarks/time_to_target.py --reuse-reference --label one-layer --flags "--n-layer 1 --weight-drop 0"

1. makemore.py (../shared/anchors/makemore/makemore.py, MIT, run as a separate process with its
   own defaults: Transformer 4x64, batch 32, AdamW 5e-4) trains on our train+val split written to
   a file, so that our test split is data it never saw. It keeps the checkpoint that scores best
   on its own small test set (1,000 of those items, evaluated every 500 steps); each printed line
   is timestamped as it arrives, so its seconds to that checkpoint are wall-clock seconds from
   its first step's line (its imports and data loading left out), its evaluations and samples in
   (they are small: 10 batches of 100, 10 samples). Its best checkpoint is then scored on our test split by a second process that imports makemore.py
   (the whole split, mean NLL per predicted character, end boundary included): that is the target.
2. Our default (lstm, its registry settings, nothing changed but --eval-interval 100 so the
   crossing is seen closely) trains until its val NLL is at or below the target, then is
   stopped (SIGTERM: it stops cleanly and keeps its best model). Its time is metrics.jsonl's
   `train_seconds` at that evaluation, evaluations left out (they are our measuring, not its
   training), with `elapsed` (evaluations in) beside it; the kept model's test NLL is reported too.

Writes benchmarks/results/time_to_target.json and .md and prints the table. Needs TensorBoard
installed for makemore.py (it imports it): pip install 'makemore[tensorboard]'.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from models import MAKEMORE_PY, NAMES, machine_gflops  # noqa: E402

import makemore  # noqa: E402
from makemore.data import Dataset  # noqa: E402

RESULTS = HERE / "results" / "time_to_target.json"
EVAL = re.compile(r"^step (\d+) train loss: ([\d.]+) test loss: ([\d.]+)")
BEST = re.compile(r"^test loss [\d.]+ is the best so far")
FIRST = re.compile(r"^step 0 \|")  # its first step's line: its clock starts there, as ours starts at its loop

# run in its own process: makemore.py's model class scores its checkpoint on our test split
SCORE = r"""
import sys, math, torch
sys.argv = [sys.argv[0]]
sys.path.insert(0, {anchor!r})
import makemore as ref
train = [w.strip() for w in open({trainval!r}, encoding="utf-8") if w.strip()]
test = [w.strip() for w in open({test!r}, encoding="utf-8") if w.strip()]
chars = sorted(set("".join(train)))
stoi = {{c: i + 1 for i, c in enumerate(chars)}}
block = max(len(w) for w in train) + 1
config = ref.ModelConfig(vocab_size=len(chars) + 1, block_size=block, n_layer=4, n_head=4, n_embd=64, n_embd2=64)
model = ref.Transformer(config)
model.load_state_dict(torch.load({checkpoint!r}, weights_only=True))
model.eval()
total, count = 0.0, 0
with torch.inference_mode():
    for w in test:
        ix = [stoi[c] for c in w]
        x = torch.tensor([[0] + ix])
        y = torch.tensor([ix + [0]])
        logits, _ = model(x)
        total += torch.nn.functional.cross_entropy(logits[0], y[0], reduction="sum").item()
        count += len(ix) + 1
print(total / count)
"""


def run_reference(steps: int, env: dict, workdir: Path, trainval: Path) -> dict:
    """Train makemore.py, timestamping its lines; its evaluations and the seconds to its best."""
    start = None
    proc = subprocess.Popen([sys.executable, "-u", str(MAKEMORE_PY), "-i", str(trainval), "-o", str(workdir / "ref"),
                             "--max-steps", str(steps)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=workdir)
    evals, best = [], None
    for line in proc.stdout:
        if start is None and FIRST.match(line):
            start = time.perf_counter()
        now = time.perf_counter() - (start or 0.0)
        if m := EVAL.match(line):
            evals.append({"step": int(m[1]), "seconds": round(now, 2), "its_test_loss": float(m[3])})
        elif BEST.match(line):
            best = evals[-1]
    err = proc.stderr.read()
    if proc.wait() != 0 or best is None:
        raise SystemExit(f"makemore.py failed ({proc.returncode}): {err.strip().splitlines()[-1:]}")
    return {"steps": steps, "evaluations": evals, "best": best}


def score_reference(workdir: Path, trainval: Path, test: Path, env: dict) -> float:
    code = SCORE.format(anchor=str(MAKEMORE_PY.parent), trainval=str(trainval), test=str(test),
                        checkpoint=str(workdir / "ref" / "model.pt"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=workdir)
    if proc.returncode != 0:
        raise SystemExit(f"scoring makemore.py's checkpoint failed: {proc.stderr.strip().splitlines()[-1:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def run_ours(target: float, env: dict, out: Path, limit: float, flags: list[str]) -> dict:
    """Train our default (with `flags`) until an evaluation's val NLL is at or below `target`; then stop it."""
    proc = subprocess.Popen([sys.executable, "-m", "makemore", "train", "--data", str(NAMES), "--out", str(out), "--force",
                             "--eval-interval", "100", "--quiet", "--samples", "0", *flags], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    metrics, reached, began = out / "metrics.jsonl", None, time.perf_counter()
    while reached is None and proc.poll() is None and time.perf_counter() - began < limit:
        time.sleep(0.2)
        if metrics.exists():
            records = [json.loads(line) for line in metrics.read_text().splitlines() if line.endswith("}")]
            reached = next((r for r in records if r["val_loss"] <= target), None)
    proc.send_signal(signal.SIGTERM)  # not SIGINT: a shell's background job starts with SIGINT ignored
    proc.wait()
    if reached is None:
        raise SystemExit(f"our default did not reach val {target:.4f} within {limit:.0f} s")
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    run = makemore.load(out, device="cpu")
    return {"reached": reached, "test_loss_of_kept_model": run.evaluate("test").nll,
            "kept_step": min(records, key=lambda r: r["val_loss"])["step"],
            "evaluations": [{k: r[k] for k in ("step", "val_loss", "train_seconds", "elapsed")} for r in records]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reference-steps", type=int, default=12_000, help="makemore.py's steps (its best comes near 10K)")
    p.add_argument("--threads", type=int, default=2, help="torch threads of every process (OMP_NUM_THREADS)")
    p.add_argument("--limit", type=float, default=900, help="seconds ours may take before the benchmark gives up")
    p.add_argument("--flags", default="", help="options added to our default's, e.g. \"--n-layer 1 --weight-drop 0\"")
    p.add_argument("--label", default="", help="results go to time_to_target-LABEL.json/.md instead")
    p.add_argument("--reuse-reference", action="store_true",
                   help="take makemore.py's run and target from benchmarks/results/time_to_target.json instead of running it")
    args = p.parse_args()
    results = RESULTS.with_name(f"time_to_target-{args.label}.json") if args.label else RESULTS
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    data = Dataset.load(str(NAMES))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        trainval, test = tmp / "trainval.txt", tmp / "test.txt"
        trainval.write_text("\n".join(data.splits["train"] + data.splits["val"]) + "\n", encoding="utf-8")
        test.write_text("\n".join(data.splits["test"]) + "\n", encoding="utf-8")
        if args.reuse_reference:  # its run, target and machine speed as the last full run of this script recorded them
            recorded = json.loads(RESULTS.read_text())
            ref, gflops = recorded["reference"], recorded["gflops_before_reference_ours_after"][:1]
            target = ref["test_loss_on_our_split"]
        else:
            gflops = [machine_gflops()]
            ref = run_reference(args.reference_steps, env, tmp, trainval)
            ref["test_loss_on_our_split"] = target = score_reference(tmp, trainval, test, env)
        print(f"makemore.py: best at step {ref['best']['step']}, {ref['best']['seconds']} s; our test split: {target:.4f}", flush=True)
        gflops.append(machine_gflops())
        ours = run_ours(target, env, tmp / "ours", args.limit, args.flags.split())
        gflops.append(machine_gflops())
    reached = ours["reached"]
    speedup = ref["best"]["seconds"] / reached["train_seconds"]
    command = f"python benchmarks/time_to_target.py --reference-steps {args.reference_steps} --threads {args.threads}"
    command += f" --label {args.label}" if args.label else ""
    command += f" --flags \"{args.flags}\"" if args.flags else ""
    command += " --reuse-reference" if args.reuse_reference else ""
    out = {"command": command, "flags": args.flags,
           "threads": args.threads, "gflops_before_reference_ours_after": gflops, "target": round(target, 4),
           "reference": ref, "ours": ours, "speedup_train_seconds": round(speedup, 2),
           "speedup_elapsed": round(ref["best"]["seconds"] / reached["elapsed"], 2)}
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps(out, indent=2) + "\n")
    lines = ["| run | reaches | at step | seconds | test NLL (our split) |", "|---|---|---:|---:|---:|",
             f"| makemore.py (its defaults, trained on our train+val) | its best checkpoint | {ref['best']['step']:,} | "
             f"{ref['best']['seconds']} (wall) | {target:.4f} |",
             f"| ours: default (lstm), {' '.join(['--eval-interval 100', *args.flags.split()])} | val <= {target:.4f} | {reached['step']:,} | "
             f"{reached['train_seconds']} (training; {reached['elapsed']} with evaluations) | {ours['test_loss_of_kept_model']:.4f} |",
             f"\nOurs is {speedup:.1f}x sooner ({out['speedup_elapsed']}x counting our evaluations); {args.threads} torch threads "
             f"each; matmul GFLOP/s before makemore.py, before ours, after: {', '.join(map(str, gflops))}."]
    results.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
