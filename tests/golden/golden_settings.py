"""The short runs whose results tests/test_golden.py pins (shared with record.py)."""

from __future__ import annotations

import json
from pathlib import Path

import makemore
from makemore.data import resolve_data
from makemore.models import REGISTRY

# every registry model with its own defaults (lstm's weight average included), cut short; lstm's dropout
# starts half way, as its default does after 3,000 of 16,000 steps
SETTINGS = {
    "bigram": {},
    "bigram-nn": {},
    "mlp": {},
    "wavenet": {},
    "bow": {},
    "rnn": {},
    "lstm": {"dropout_from": 15},  # its registry dropout_from would leave these 30 steps undropped
    "gru": {},
    "transformer": {},
}
COMMON = {"max_steps": 30, "eval_interval": 10, "batch_size": 16, "seed": 7}
TIMING = ("chars_per_sec", "elapsed", "train_seconds")  # metrics.jsonl fields that depend on the machine's speed


def data_file(tmp: Path) -> Path:
    path = tmp / "golden.txt"
    if not path.exists():
        items = resolve_data("names").read_text(encoding="utf-8").splitlines()[:300]
        path.write_text("\n".join(items) + "\n", encoding="utf-8")
    return path


def run_model(name: str, tmp: Path) -> dict:
    options = {} if REGISTRY[name].cls.closed_form else {**COMMON, **SETTINGS[name]}  # counting takes no steps or seed
    result = makemore.train(data=str(data_file(tmp)), model=name, out=tmp / name, quiet=True, log=lambda m: None, **options)
    metrics = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        "metrics": [{k: v for k, v in m.items() if k not in TIMING} for m in metrics],
        "final": {split: r.nll for split, r in result.final.items()},
        "steps": result.steps,
    }
