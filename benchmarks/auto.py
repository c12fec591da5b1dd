"""`--model auto` against each family, on lists of several sizes, at budgets of 10 and 60 seconds.

    python benchmarks/auto.py                        # names.txt subsets of 300, 3,000 and 30,000 lines
    python benchmarks/auto.py --extra                # and tzdata's zone cities (an installed PyPI package)
    python benchmarks/auto.py --budgets 10 --no-auto # the families alone (what auto's rule was first fitted to)

Each dataset is built here: a seeded sample of the lectures' names.txt (never copied into the
repository), and with --extra the city names of the IANA zones that the installed `tzdata`
package holds (its version recorded). Every run trains on one thread with `--time-budget B`; the
n-gram, fitted in closed form, takes no budget. Wall seconds include the final evaluation.
Writes benchmarks/results/auto.json and prints a table (test NLL, steps, seconds), with the
machine's float32 matmul GFLOP/s before and after (benchmarks/models.py's machine_gflops).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata, resources
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from models import NAMES, machine_gflops  # noqa: E402  (benchmarks/models.py)

import makemore  # noqa: E402

RESULTS = HERE / "results" / "auto.json"
FAMILIES = ("mlp", "lstm", "gru")  # transformer (--families) never came first at these budgets in a first run
SIZES = (300, 3_000, 30_000)


def names_subset(n: int, folder: Path) -> Path:
    lines = [line for line in NAMES.read_text().splitlines() if line.strip()]
    path = folder / f"names-{n}.txt"
    path.write_text("\n".join(random.Random(n).sample(lines, min(n, len(lines)))) + "\n")
    return path


def zone_cities(folder: Path) -> tuple[Path, str]:
    """The last part of every IANA zone name tzdata holds ("America/New_York" -> "new york")."""
    root = resources.files("tzdata") / "zoneinfo"
    names = set()

    def walk(node, depth):
        for child in node.iterdir():
            if child.is_dir():
                walk(child, depth + 1)
            elif depth >= 1 and child.name[0].isupper():
                names.add(child.name.replace("_", " ").lower())

    walk(root, 0)
    path = folder / "tz-cities.txt"
    path.write_text("\n".join(sorted(names)) + "\n")
    return path, f"tzdata {metadata.version('tzdata')}"


def run(data: Path, model: str, budget: float, out: Path) -> dict:
    began = time.perf_counter()
    options = {} if model == "ngram" else {"time_budget": budget}
    result = makemore.train(data=str(data), model=model, out=out, force=True, quiet=True, log=lambda m: None, threads=1,
                            **options)
    seconds = time.perf_counter() - began
    config = json.loads((out / "config.json").read_text())
    row = {"model": model, "test_nll": round(result.final["test"].nll, 4), "val_nll": round(result.final["val"].nll, 4),
           "steps": result.steps, "seconds": round(seconds, 1), "params": config["params"]}
    if model == "auto":
        row["chosen"] = config["model"]
        row["candidates"] = config["choice"]["model"]["candidates"]
    if config["model"] == "ngram":
        row["order"] = config["model_config"]["order"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[10, 60])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--extra", action="store_true", help="also tzdata's zone cities")
    parser.add_argument("--no-auto", action="store_true", help="the families alone")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    gflops_before = machine_gflops()
    rows, sources = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        datasets = [names_subset(n, folder) for n in args.sizes]
        for path in datasets:
            sources[path.stem] = f"a sample of names.txt, random.Random({path.stem.split('-')[1]})"
        if args.extra:
            path, version = zone_cities(folder)
            datasets.append(path)
            sources[path.stem] = version
        for path in datasets:
            items = sum(1 for line in path.read_text().splitlines() if line.strip())
            ngram = run(path, "ngram", 0, folder / "run")
            rows.append({"dataset": path.stem, "items": items, "budget": None, **ngram})
            print(json.dumps(rows[-1]), flush=True)
            for budget in args.budgets:
                for model in [*args.families, *([] if args.no_auto else ["auto"])]:
                    rows.append({"dataset": path.stem, "items": items, "budget": budget,
                                 **run(path, model, budget, folder / "run")})
                    print(json.dumps(rows[-1]), flush=True)
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.machine(),
              "torch": torch.__version__, "threads": 1, "gflops_before": gflops_before, "gflops_after": machine_gflops(),
              "datasets": sources, "rows": rows}
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nmatmul GFLOP/s {gflops_before} before, {result['gflops_after']} after (1 thread)")
    print(f"{'dataset':14s} {'budget':>6s} {'model':12s} {'test NLL':>8s} {'steps':>7s} {'seconds':>7s}")
    for r in rows:
        name = r["model"] + (f"->{r['chosen']}" if "chosen" in r else "")
        budget = "-" if r["budget"] is None else f"{r['budget']:g}"
        print(f"{r['dataset']:14s} {budget:>6s} {name:12s} {r['test_nll']:8.4f} {r['steps']:7d} {r['seconds']:7.1f}")


if __name__ == "__main__":
    main()
