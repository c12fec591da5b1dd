"""Do labels help? The same model trained on the built-in names-sex with its labels (F, M) and
without them, compared on each label's test items.

    python benchmarks/labels.py                 # lstm, 8,000 steps per arm
    python benchmarks/labels.py --model mlp --max-steps 20000

Both arms see the same items in the same split (the split shuffles the lines, so it is the same
with or without their labels), the same model, seed and steps. The labelled model's NLL of an
item is -log p(item | its label); the unlabelled model's is -log p(item). Writes
benchmarks/results/labels.json and labels.md and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

import makemore
from makemore.data import Dataset, resolve_data

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from models import machine_gflops  # noqa: E402

RESULTS = HERE / "results" / "labels.json"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="lstm")
    p.add_argument("--max-steps", type=int, default=8000)
    p.add_argument("--seed", type=int, default=1337)
    args = p.parse_args()
    labelled = Dataset.load("names-sex")
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "names-sex-items.txt"  # the same lines without their labels
        plain.write_text("\n".join(labelled.items) + "\n", encoding="utf-8")
        assert Dataset.load(str(plain)).splits == labelled.splits  # the same split, item for item
        rows = {}
        for arm, data in (("with labels", "names-sex"), ("without labels", str(plain))):
            gflops = machine_gflops()
            start = time.perf_counter()
            result = makemore.train(data=data, model=args.model, out=Path(tmp) / arm, max_steps=args.max_steps, seed=args.seed,
                                    device="cpu", quiet=True, log=lambda m: None)
            seconds = time.perf_counter() - start
            run = makemore.load(result.run_dir, device="cpu")
            test = run.evaluate("test")
            if test.by_label is None:  # the unlabelled model: group its per-item NLL by the items' labels
                from makemore.evaluate import evaluate

                test = evaluate(run.model, Dataset.load(str(plain), vocab=run.vocab).packed("test", run.model.max_tokens()),
                                "test", labelled.split_labels["test"])
            rows[arm] = {"test_nll": round(test.nll, 4),
                         "by_label": {k: {"nll": round(v.nll, 4), "items": v.items, "chars": v.chars} for k, v in test.by_label.items()},
                         "steps": result.steps, "train_seconds": round(seconds, 1), "gflops": gflops,
                         "threads": torch.get_num_threads()}
            print(arm, json.dumps(rows[arm]))
    out = {"command": f"python benchmarks/labels.py --model {args.model} --max-steps {args.max_steps} --seed {args.seed}",
           "data": f"names-sex ({resolve_data('names-sex').name}: {len(labelled.items)} lines, labels {labelled.vocab.labels})",
           "model": args.model, "rows": rows}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    lines = ["| arm | test NLL | " + " | ".join(f"{k} test NLL" for k in labelled.vocab.labels) + " | steps | train s | GFLOP/s |",
             "|---|---:|" + "---:|" * len(labelled.vocab.labels) + "---:|---:|---:|"]
    for arm, row in rows.items():
        cells = " | ".join(f"{row['by_label'][k]['nll']:.4f}" for k in labelled.vocab.labels)
        lines.append(f"| {arm} | {row['test_nll']:.4f} | {cells} | {row['steps']:,} | {row['train_seconds']} | {row['gflops']} |")
    (RESULTS.with_suffix(".md")).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
