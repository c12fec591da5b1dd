"""The short runs whose results tests/test_golden.py pins (shared with record.py)."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

import makemore
from makemore.data import resolve_data
from makemore.models import REGISTRY

# every registry model with its own defaults (lstm's weight average included), cut short; lstm's dropout
# starts half way, as its default does after 3,000 of 16,000 steps
SETTINGS = {
    "bigram": {},
    "bigram-nn": {},
    "ngram": {},
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
    """Train `name` into tmp/name (its run directory, model.safetensors included); the figures to pin."""
    options = {} if REGISTRY[name].cls.closed_form else {**COMMON, **SETTINGS[name]}  # counting takes no steps or seed
    result = makemore.train(data=str(data_file(tmp)), model=name, out=tmp / name, quiet=True, log=lambda m: None, **options)
    metrics = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        "metrics": [{k: v for k, v in m.items() if k not in TIMING} for m in metrics],
        "final": {split: r.nll for split, r in result.final.items()},
        "steps": result.steps,
    }


def machine() -> dict:
    """What computed the figures: for a person comparing two machines' results, not for the test to act on."""
    cpu = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "vendor_id") and key.strip() not in cpu:
                cpu[key.strip()] = value.strip()
    except OSError:  # no /proc (macOS, Windows)
        pass
    build = torch.__config__.show().splitlines()
    settings = dict(item.strip().partition("=")[::2] for line in build if "Build settings:" in line
                    for item in line.partition("Build settings:")[2].split(","))
    return {
        "cpu": cpu.get("model name") or platform.processor() or platform.machine(),
        "cpu_vendor": cpu.get("vendor_id", ""),
        "arch": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_commit": torch.version.git_version,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        # the libraries torch was built with (MKL, oneDNN, OpenMP, ...), and its BLAS and LAPACK
        "torch_build": [line.strip(" -") for line in build if line.startswith("  - ") and "Build settings:" not in line],
        "blas": settings.get("BLAS_INFO", ""),
        "lapack": settings.get("LAPACK_INFO", ""),
    }
