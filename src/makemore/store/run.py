"""The run directory: everything needed to rebuild, evaluate, sample and resume a run.

    config.json        model name and config, training config, vocabulary, data source and split
    model.safetensors  weights of the best model so far (lowest val NLL)
    state.safetensors  last checkpoint for --resume: weights, optimiser, random state, progress
    metrics.jsonl      one JSON object per evaluation
    diagnostics.jsonl  with --diagnostics: activation, gradient and update statistics (diagnostics.py)
    summary.json       final train/val/test NLL, written when training ends

Weights go through safetensors, never pickle, so opening a run directory someone sent you
cannot run their code. Every file is written to a temporary name and renamed into place, with
the permissions the umask gives any new file. Every read checks what it reads: a damaged or
foreign file is a RunError that names the file, what is wrong with it and what to do, never a
traceback and never a silently wrong model (docs/reliability.md).

One process at a time trains a run: `RunDir.lock()` holds `RUN/.lock` (an OS file lock through
`filelock`, released by the kernel if the process dies). Readers (eval, sample, score) take no
lock: a rename replaces a file whole, and a reader holds the file it opened.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Collection
from contextlib import contextmanager
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from ..data import read_regular
from ..errors import MakemoreError, RunError, WriteFailed
from .files import CONFIG, damaged, json_type, read_json, write_json
from .records import append_records, read_records, rewrite_records
from .schema import check_config
from .tensors import check_shapes, header_shapes, load_state, load_tensors, save_tensors, tensor_shapes

MODEL = "model.safetensors"


STATE = "state.safetensors"


METRICS = "metrics.jsonl"


DIAGNOSTICS = "diagnostics.jsonl"


SUMMARY = "summary.json"


LOCK = ".lock"


TENSORBOARD = "tensorboard"  # a folder, with --tensorboard


# what training writes; a directory holding config.json and none of the rest never got to its first checkpoint
TRAINING_OUTPUTS = (MODEL, STATE, METRICS, DIAGNOSTICS, SUMMARY, TENSORBOARD)


# a temporary file of atomic_write: ".NAME.RANDOM.tmp" (RANDOM from secrets, or from mkstemp in older versions)
TEMPORARY = re.compile(r"\.(?P<name>.+)\.[A-Za-z0-9_]{6,}\.tmp")


class RunDir:
    """A run directory: the files in it, who may write it (the lock), how a run starts over and
    is discarded, and reading and writing each of its files through the store's checks."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self) -> bool:
        return self.file(CONFIG).exists()

    def is_unstarted(self) -> bool:
        """A run stopped before its first checkpoint and before finishing: config.json, but no
        state to resume from and no summary of a finished run (a kill during the first checkpoint
        may have left its metrics line and model). Nothing in it can be resumed or is final, so a
        new `train --out` here may replace it without --force."""
        return self.exists() and not self.file(STATE).exists() and not self.file(SUMMARY).exists()

    def clean_temporary(self) -> list[Path]:
        """Delete the temporary files of writes that were killed half way (`.NAME.*.tmp` for the
        files training writes) and return them. Only safe with the lock held: another writer's
        temporary file is in use until its rename."""
        removed = []
        for path in self.path.glob(".*.tmp"):
            m = TEMPORARY.fullmatch(path.name)
            if m and m["name"] in (CONFIG, *TRAINING_OUTPUTS) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    @contextmanager
    def lock(self):
        """Hold the run directory for one writer (train, --resume). A second process gets a
        RunError at once, naming the holder's pid. On acquiring, temporary files left by a killed
        writer are deleted (clean_temporary)."""
        lock = FileLock(self.file(LOCK), blocking=False)
        try:
            lock.acquire()
        except Timeout:
            raise RunError(f"{self.path} is in use by another makemore process ({self.lock_holder()}); "
                           "wait for it or choose another --out") from None
        except OSError as e:
            raise RunError(f"cannot lock {self.path} ({e.strerror or e}); check that the directory is writable") from None
        try:
            try:  # record who holds it, for the message a second process gives
                fd = os.open(self.file(LOCK), os.O_WRONLY)
                try:
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                finally:
                    os.close(fd)
            except OSError:
                pass  # the lock holds without it; the message then has no pid
            self.clean_temporary()
            yield self
        finally:
            lock.release()

    def lock_holder(self) -> str:
        try:
            pid = read_regular(self.file(LOCK), 64).decode("ascii").strip()  # a pid, so a few bytes
        except (OSError, UnicodeDecodeError):
            pid = ""
        return f"pid {pid}" if pid.isdigit() else "pid unknown"

    def check_new(self, force: bool, data: Path | None = None) -> None:
        """Refuse to start a run over an existing one unless `force`; never over a folder of other
        things. A folder holding only the run's own `data` file is new: the page's runs keep their list inside."""
        if not self.path.exists() and not self.path.is_symlink():
            return
        if not self.path.is_dir():
            raise MakemoreError(f"{self.path} exists and is not a folder; choose another --out")
        ours = {LOCK} | ({data.name} if data is not None and data.resolve().parent == self.path.resolve() else set())
        if not any(p.name not in ours for p in self.path.iterdir()) or self.is_unstarted():
            return  # empty, or a run that never reached its first checkpoint
        if not self.exists():
            raise MakemoreError(f"{self.path} exists and is not a makemore run directory; refusing to write into it, choose another --out")
        if not force:
            raise MakemoreError(f"{self.path} already exists; pass --resume {self.path} to continue it, --force to replace it, or another --out")

    def create(self, config: dict) -> None:
        """Make the run directory with its config.json, first removing what an earlier run wrote there
        (only that: a file of the user's kept in the folder stays). Call it holding the lock."""
        self.make()
        self.remove_outputs()
        self.write_config(config)

    def make(self) -> list[Path]:
        """Make the run directory and the folders above it that are missing; returns the folders
        made, deepest first (what `discard` may remove again)."""
        made = [p for p in (self.path, *self.path.parents) if not p.exists() and not p.is_symlink()]
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise WriteFailed(self.path, e, "choose another --out") from None
        return made

    def remove_outputs(self, also=()) -> None:
        """Delete what training writes here (and the files named in `also`), nothing else."""
        for name in (*TRAINING_OUTPUTS, *also):
            target = self.file(name)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()

    def discard(self, made: list[Path]) -> None:
        """Undo a new run that failed before its first checkpoint: delete its config.json, what
        training wrote and the temporary files of writes cut short, then what `made` lists (the
        lock file and the folders the run created, deepest first) if nothing else is in them. Best
        effort, holding the lock: a folder the user put a file into stays, with that file."""
        try:
            self.clean_temporary()
            self.remove_outputs(also=(CONFIG,))
            for path in made:
                if path.is_dir():
                    path.rmdir()
                else:
                    path.unlink()
        except OSError:
            pass  # a folder not empty, or a disk that refuses even this: what is left is still unstarted

    def read_summary(self) -> dict | None:
        """summary.json of a finished run, or None when there is none (training never finished)."""
        if not self.file(SUMMARY).exists():
            return None
        summary = read_json(self.file(SUMMARY))
        if not isinstance(summary, dict):
            raise damaged(self.file(SUMMARY), f"it holds a JSON {json_type(summary)}, not an object")
        return summary

    def read_config(self, models: Collection[str]) -> dict:
        """config.json, checked (store.schema); `models`: the model names this makemore knows."""
        if not self.path.exists():
            raise RunError(f"run directory {self.path} not found; pass the --out directory of a `makemore train` run")
        if not self.path.is_dir():
            raise RunError(f"{self.path} is not a directory; pass the --out directory of a `makemore train` run")
        path = self.file(CONFIG)
        if not path.exists() and not path.is_symlink():
            raise RunError(f"{self.path} is not a makemore run directory (no {CONFIG}); pass the --out directory of a `makemore train` run")
        cfg = read_json(path)
        check_config(cfg, path, models)
        return cfg

    def write_config(self, cfg: dict) -> None:
        write_json(self.file(CONFIG), cfg)

    def update_config(self, **changes) -> None:
        """Set keys of config.json, the rest kept: what a fit decided from the data (the model's
        settings, its size, what it chose on val), which only training knows. Call it holding the lock."""
        write_json(self.file(CONFIG), {**read_json(self.file(CONFIG)), **changes})

    def save_model(self, model: torch.nn.Module) -> None:
        save_tensors(self.file(MODEL), model.state_dict())

    def check_weights(self, model: torch.nn.Module, name: str = MODEL) -> None:
        """The weights file holds the tensors of `model` (which may live on the meta device),
        read from the file's header alone: check this before building a model for real, and a
        config.json that describes a huge model cannot make memory explode."""
        check_shapes(model, tensor_shapes(self.file(name)), self.file(name))

    def load_weights(self, model: torch.nn.Module, name: str = MODEL) -> None:
        """Load the weights file into `model`, its header checked against the model before the
        tensors are read: the file is read only when it is as large as the model implies."""
        path = self.file(name)
        tensors, _ = load_tensors(path, lambda header: check_shapes(model, header_shapes(header, path), path))
        load_state(model, tensors, path)

    def append_metrics(self, record: dict) -> None:
        self.append_records(METRICS, [record])

    def read_metrics(self) -> list[dict]:
        return self.read_records(METRICS)

    def truncate_metrics(self, step: int) -> None:
        """Drop evaluations after `step`, the checkpoint a resumed run continues from."""
        self.rewrite_records(METRICS, [r for r in self.read_metrics() if r.get("step", 0) <= step])

    def append_records(self, name: str, records: list[dict]) -> None:
        advice = ("train a new run that records diagnostics less often (a larger --diagnostics-interval)"
                  if name == DIAGNOSTICS else "train a new run that evaluates less often (a larger --eval-interval)")
        append_records(self.file(name), records, advice)

    def read_records(self, name: str) -> list[dict]:
        return read_records(self.file(name))

    def rewrite_records(self, name: str, records: list[dict]) -> None:
        rewrite_records(self.file(name), records)
