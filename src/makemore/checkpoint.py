"""The run directory: everything needed to rebuild, evaluate, sample and resume a run.

    config.json        model name and config, training config, vocabulary, data source and split
    model.safetensors  weights of the best model so far (lowest val NLL)
    state.safetensors  last checkpoint for --resume: weights, optimiser, random state, progress
    metrics.jsonl      one JSON object per evaluation
    diagnostics.jsonl  with --diagnostics: activation, gradient and update statistics (diagnostics.py)
    summary.json       final train/val/test NLL, written when training ends

Weights go through safetensors, never pickle, so opening a run directory someone sent you
cannot run their code. Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save

from .data import Dataset, Vocabulary
from .errors import DataError, MakemoreError, RunError

CONFIG = "config.json"
MODEL = "model.safetensors"
STATE = "state.safetensors"
METRICS = "metrics.jsonl"
DIAGNOSTICS = "diagnostics.jsonl"
SUMMARY = "summary.json"
TENSORBOARD = "tensorboard"  # a folder, with --tensorboard
WRITTEN = (CONFIG, MODEL, STATE, METRICS, DIAGNOSTICS, SUMMARY, TENSORBOARD)  # all that a run writes
STEP_LOSS = "train.step_loss"  # in STATE: the training loss of every step, for `makemore plot --kind loss`


def atomic_write(path: Path, data: bytes) -> None:
    """Write bytes so that `path` holds either its old content or all of `data`, never a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    # clone: safetensors refuses tensors that share storage (tied weights) or are non-contiguous
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    meta = {"json": json.dumps(metadata)} if metadata is not None else None
    atomic_write(path, st_save(flat, metadata=meta))


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise RunError(f"{path} is missing; the run directory is incomplete (was training stopped before its first checkpoint?)") from None
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as e:
        raise RunError(f"{path} is corrupted ({e}); retrain or restore the run directory") from None
    return tensors, json.loads(meta["json"]) if meta and "json" in meta else None


class RunDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self) -> bool:
        return self.file(CONFIG).exists()

    def started(self) -> bool:
        """Whether training has written anything beyond config.json (a run killed before its first
        checkpoint has not, and may simply be started again)."""
        return any(self.file(name).exists() for name in WRITTEN if name != CONFIG)

    def check_new(self, force: bool) -> None:
        """Refuse to start a run over an existing one unless `force`; never over a folder of other things."""
        if not self.path.exists() and not self.path.is_symlink():
            return
        if not self.path.is_dir():
            raise MakemoreError(f"{self.path} exists and is not a folder; choose another --out")
        if not any(self.path.iterdir()) or (self.exists() and not self.started()):
            return  # empty, or a run that never reached its first checkpoint
        if not self.exists():
            raise MakemoreError(f"{self.path} exists and is not a makemore run directory; refusing to write into it, choose another --out")
        if not force:
            raise MakemoreError(f"{self.path} already exists; pass --resume {self.path} to continue it, --force to replace it, or another --out")

    def create(self, config: dict) -> None:
        """Make the run directory with its config.json, first removing what an earlier run wrote there
        (only that: a file of the user's kept in the folder stays)."""
        self.path.mkdir(parents=True, exist_ok=True)
        for name in WRITTEN:
            target = self.file(name)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
        self.write_config(config)

    def read_config(self) -> dict:
        if not self.path.exists():
            raise RunError(f"run directory {self.path} not found; pass the --out directory of a `makemore train` run")
        if not self.path.is_dir():
            raise RunError(f"{self.path} is not a directory; pass the --out directory of a `makemore train` run")
        try:
            cfg = json.loads(self.file(CONFIG).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{self.path} is not a makemore run directory (no {CONFIG}); pass the --out directory of a `makemore train` run") from None
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
            raise RunError(f"{self.file(CONFIG)} is corrupted ({e}); retrain or restore the run directory") from None
        if not isinstance(cfg, dict) or not {"model", "model_config", "vocab"} <= cfg.keys():
            raise RunError(f"{self.file(CONFIG)} is not a makemore run config; retrain or restore the run directory")
        return cfg

    def write_config(self, cfg: dict) -> None:
        write_json(self.file(CONFIG), cfg)

    def save_model(self, model: torch.nn.Module) -> None:
        save_tensors(self.file(MODEL), model.state_dict())

    def load_weights(self, model: torch.nn.Module, name: str = MODEL) -> None:
        tensors, _ = load_tensors(self.file(name))
        load_state(model, tensors, self.file(name))

    def append_metrics(self, record: dict) -> None:
        self.append_records(METRICS, [record])

    def read_metrics(self) -> list[dict]:
        return self.read_records(METRICS)

    def truncate_metrics(self, step: int) -> None:
        """Drop evaluations after `step`, the checkpoint a resumed run continues from."""
        self.rewrite_records(METRICS, [r for r in self.read_metrics() if r.get("step", 0) <= step])

    def append_records(self, name: str, records: list[dict]) -> None:
        """Append JSON lines and fsync: a crash can cut only the last line, which reading skips."""
        with open(self.file(name), "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(r) + "\n" for r in records))
            f.flush()
            os.fsync(f.fileno())

    def read_records(self, name: str) -> list[dict]:
        path = self.file(name)
        if not path.exists():
            return []
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut short by a crash: everything before it is good
        return records

    def rewrite_records(self, name: str, records: list[dict]) -> None:
        atomic_write(self.file(name), "".join(json.dumps(r) + "\n" for r in records).encode("utf-8"))


def run_dataset(config: dict, data: str | None = None, advice: str = "pass the original file with --data PATH") -> Dataset:
    """A run's data (or `data` instead), split as in training, encoded with the run's vocabulary.
    `advice` says how the caller's user can point at the data when it has moved or changed."""
    source = data or config["data"]["source"]
    try:
        dataset = Dataset.load(source, config["data"]["split_seed"], vocab=Vocabulary(config["vocab"]))
    except DataError as e:
        if data is None:
            raise DataError(f"cannot read the run's training data ({e}); {advice}") from None
        raise
    if data is None and dataset.fingerprint != config["data"]["fingerprint"]:
        raise RunError(f"the training data at {source} has changed since this run was trained; {advice}")
    return dataset


def load_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    expected = model.state_dict()
    if set(tensors) != set(expected) or any(tensors[k].shape != expected[k].shape for k in expected):
        raise RunError(f"{source} does not match the model in config.json; retrain or restore the run directory")
    model.load_state_dict(tensors)
