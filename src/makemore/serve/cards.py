"""Each model's card on the page: its data, size, NLL and loss curve."""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path

from ..api import Run
from ..constraints import script_of
from ..data import BUILTIN, SPLIT_NAMES
from ..errors import RunError


def source_name(source: str) -> str:
    """The data's name for the card: a built-in's name or the file's name, never a server path."""
    return source if source in BUILTIN else Path(source).name


def curve(records: list[dict], points: int = 200) -> list[dict]:
    """The loss curve from metrics.jsonl, thinned to at most `points` evaluations (the last kept)."""
    rows = [{"step": r["step"], "train": r.get("train_loss"), "val": r.get("val_loss")} for r in records if "step" in r]
    if len(rows) > points:
        stride = math.ceil(len(rows) / points)
        rows = rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])
    return rows


def scripts(alphabet: list[str]) -> list[str]:
    """The Unicode scripts of a model's letters (what --script takes), in lower case."""
    return sorted({script_of(ch).lower() for ch in alphabet if unicodedata.category(ch).startswith("L")})


def card(name: str, run: Run) -> dict:
    cfg = run.config
    data = cfg.get("data", {})
    try:
        summary = run.dir.read_summary() or {}  # none: training never finished, a card without NLLs
    except RunError:  # a damaged summary.json (checkpoint.read_json: a regular file of bounded size) gives no NLLs either
        summary = {}
    return {
        "name": name,
        "model": cfg["model"],
        "params": cfg.get("params", run.model.num_params()),
        "vocab": "".join(run.config["vocab"]),
        "labels": run.labels,
        "label_counts": data.get("label_counts") or {},
        "max_len": run.model_config.max_len,
        "scripts": scripts(run.vocab.alphabet),
        "data": {
            "source": source_name(data.get("source", "?")),
            "items": data.get("items"),
            "split": {s: v.get("items") for s, v in data.get("split", {}).items()},
        },
        "steps": summary.get("step"),
        "nll": {s: summary[s]["nll"] for s in SPLIT_NAMES if s in summary},
        "curve": curve(run.dir.read_metrics()),
    }
