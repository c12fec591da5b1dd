"""What --diagnostics costs: training time with and without it at the default interval.

    OMP_NUM_THREADS=1 python benchmarks/diagnostics_overhead.py              # mlp (cheapest steps: the worst case)
    OMP_NUM_THREADS=1 python benchmarks/diagnostics_overhead.py --models mlp wavenet transformer

Each model trains with its registry defaults, the same seed and the same number of steps, once
without and once with --diagnostics, the two arms interleaved over several repeats so that
whatever else the machine is doing slows both alike; the fastest of each arm's repeats is
compared. One evaluation at the end (eval_interval = steps), so the time is the training steps'.

On a busy machine whole runs vary by tens of percent, so the script also times single steps,
plain and watched alternately, and takes the median of each: the extra cost of a watched step
spread over the interval is the overhead the default implies, a steadier figure.
Results go to benchmarks/results/diagnostics_overhead.json (the target is at most 25 % extra).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported: one thread, as on a shared machine

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from contextlib import nullcontext  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

import makemore  # noqa: E402
from makemore.checkpoint import RunDir, write_json  # noqa: E402
from makemore.data import Dataset  # noqa: E402
from makemore.diagnostics import DEFAULT_INTERVAL, Diagnostics  # noqa: E402
from makemore.models import build  # noqa: E402
from makemore.trainer import make_optimizer, resolve_configs  # noqa: E402

HERE = Path(__file__).resolve().parent
NAMES = HERE.parents[1] / "shared" / "data" / "names.txt"
RESULTS = HERE / "results" / "diagnostics_overhead.json"
TARGET = 0.25


def seconds(model: str, data: Path, steps: int, diagnostics: bool, workdir: Path) -> float:
    extra = {"diagnostics": True} if diagnostics else {}
    result = makemore.train(data=str(data), model=model, out=workdir / "run", force=True, quiet=True, log=lambda m: None,
                            device="cpu", max_steps=steps, eval_interval=steps, seed=1, **extra)
    return result.seconds


def step_costs(model: str, data: Path, pairs: int, workdir: Path) -> tuple[float, float]:
    """Median seconds of a plain and of a watched training step, taken alternately."""
    dataset = Dataset.load(str(data))
    name, config, tc = resolve_configs(model, dataset, {"seed": 1})
    torch.manual_seed(tc.seed)
    net = build(name, config).train()
    batches = net.batches(dataset.packed("train"), tc.batch_size, torch.Generator().manual_seed(tc.seed), torch.device("cpu"))
    opt = make_optimizer(net, tc)
    diagnostics = Diagnostics(net, RunDir(workdir), interval=1)
    times = {False: [], True: []}
    for i in range(2 * pairs + 20):
        watched = i % 2 == 1
        batch = batches()
        start = time.perf_counter()
        with diagnostics.watch(i, tc.lr) if watched else nullcontext():
            loss = net.loss(batch)
            opt.zero_grad(set_to_none=True)
            (loss + net.penalty()).backward()
            opt.step()
        if i >= 20:  # after a warm-up
            times[watched].append(time.perf_counter() - start)
    return statistics.median(times[False]), statistics.median(times[True])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp"])
    parser.add_argument("--data", type=Path, default=NAMES)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"benchmark data not found at {args.data}; pass --data PATH to the lectures' names.txt")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            seconds(model, args.data, min(args.steps, 200), False, Path(tmp))  # warm up
            times = {"off": [], "on": []}
            for _ in range(args.repeats):
                for arm in ("off", "on"):
                    times[arm].append(round(seconds(model, args.data, args.steps, arm == "on", Path(tmp)), 3))
            best_off, best_on = min(times["off"]), min(times["on"])
            plain, watched = step_costs(model, args.data, 200, Path(tmp))
            implied = (watched - plain) / (DEFAULT_INTERVAL * plain)
            rows.append({"model": model, "steps": args.steps, "seconds_without": times["off"], "seconds_with": times["on"],
                         "min_without": best_off, "min_with": best_on, "overhead": round(best_on / best_off - 1, 4),
                         "within_target": best_on / best_off - 1 <= TARGET,
                         "step_ms": round(1e3 * plain, 3), "watched_step_ms": round(1e3 * watched, 3),
                         "implied_overhead": round(implied, 4)})
    result = {
        "what": "training seconds with and without --diagnostics (min over interleaved repeats)",
        "diagnostics_interval": DEFAULT_INTERVAL,
        "target_overhead": TARGET,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}, {os.cpu_count()} cpus",
        "data": args.data.name,
        "rows": rows,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    write_json(RESULTS, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
