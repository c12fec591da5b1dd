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

import io
import json
import os
import re
import secrets
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path

import torch
from filelock import FileLock, Timeout
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .config import (DEFAULT_ITEM_LENGTH, MAX_CHARS, MAX_HEADER_BYTES, MAX_ITEM_LENGTH, MAX_JSON_BYTES, MAX_LABEL_LENGTH,
                     MAX_LABELS, MAX_RECORDS_BYTES, MAX_SEED, MAX_VOCAB, MODEL_OPTIONS, TRAIN_OPTIONS, OptionError)
from .data import Dataset, NotRegular, TooLarge, Vocabulary, read_regular
from .errors import DataError, MakemoreError, RunError, WriteFailed
from .models import REGISTRY

CONFIG = "config.json"
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
RESTORE = "restore the run directory from a copy or train it again"


def damaged(path: Path, what: str, todo: str = RESTORE) -> RunError:
    """The one-line error for a run-directory file that cannot be used."""
    return RunError(f"{path} is damaged: {what}; {todo}")


@contextmanager
def atomic_file(path: Path):
    """A binary file to write that appears at `path` only once all of it is written: `path` holds
    either its old content or the whole new one, never a part. The file is created with mode 0o666
    less the umask, like any file a program creates (mkstemp would make it 0o600, unlike
    metrics.jsonl beside it). A write that fails (a full disk, a read-only folder) leaves nothing
    behind and is a WriteFailed naming `path`."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as e:
        raise WriteFailed(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise WriteFailed(path, e) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_all(fd: int, data: bytes) -> None:
    """os.write until all of `data` is written (a write may take less than it is given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def atomic_write(path: Path, data: bytes) -> None:
    """Write bytes so that `path` holds either its old content or all of `data` (atomic_file)."""
    with atomic_file(path) as f:
        f.write(data)


def write_json(path: Path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    # clone: safetensors refuses tensors that share storage (tied weights) or are non-contiguous
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    meta = {"json": json.dumps(metadata)} if metadata is not None else None
    atomic_write(path, st_save(flat, metadata=meta))


def missing(path: Path) -> RunError:
    return RunError(f"{path} is missing: the run directory is incomplete (was training stopped before its first "
                    f"checkpoint?); {RESTORE}")


def unreadable(path: Path, e: OSError) -> RunError:
    return RunError(f"cannot read {path} ({e.strerror or e}); check its permissions")


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def not_regular(path: Path) -> RunError:
    return damaged(path, "it is not a regular file (a pipe, a device, or a link to one)")


def read_run_file(path: Path, limit: int) -> bytes:
    """The bytes of a run directory's file: a regular file of at most `limit` bytes (read_regular:
    a pipe or a device is refused before anything is read, a larger file from its size), read
    through one open. Anything else is one RunError naming the file."""
    try:
        return read_regular(path, limit)
    except FileNotFoundError:
        raise missing(path) from None
    except NotRegular:
        raise not_regular(path) from None
    except TooLarge as e:
        raise damaged(path, f"it is {e.args[0]:,} bytes, more than the {limit:,} such a file can be") from None
    except OSError as e:
        raise unreadable(path, e) from None


def open_run_file(path: Path):
    """A regular file of the run directory open for binary reading, and its size. The open does
    not block (a pipe with no writer returns at once), and anything but a regular file is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise missing(path) from None
    except OSError as e:
        raise unreadable(path, e) from None
    f = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        f.close()
        raise not_regular(path)
    return f, info.st_size


def read_header(f, size: int, path: Path) -> dict:
    """The JSON header of a safetensors file open at its start (`size` bytes long): an 8-byte
    little-endian length, then that much JSON, at most MAX_HEADER_BYTES. Reads the header only."""
    start = f.read(8)
    if len(start) < 8:
        raise damaged(path, f"not a readable safetensors file ({len(start)} bytes, shorter than the 8-byte header length)")
    n = int.from_bytes(start, "little")
    if n > min(MAX_HEADER_BYTES, size - 8):
        raise damaged(path, f"not a readable safetensors file (the header says it is {n:,} bytes long, but "
                            + (f"a header is at most {MAX_HEADER_BYTES:,})" if n > MAX_HEADER_BYTES else
                               f"the file has {size - 8:,} after it)"))
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise damaged(path, f"not a readable safetensors file ({one_line(e)})") from None
    if not isinstance(header, dict):
        raise damaged(path, "not a readable safetensors file (the header is not a JSON object)")
    return header


def header_shapes(header: dict, path: Path) -> dict[str, tuple[tuple[int, ...], torch.dtype | None]]:
    """Name -> (shape, dtype) of every tensor a safetensors header describes."""
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise damaged(path, f"not a readable safetensors file (tensor {name!r} has no valid shape)")
        out[name] = (tuple(shape), SAFETENSORS_DTYPES.get(entry.get("dtype")))
    return out


def header_data_bytes(header: dict, path: Path) -> int:
    """How many bytes of tensors follow the header, by the header: where its last tensor ends."""
    ends = [0]
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int and o >= 0 for o in offsets):
            raise damaged(path, f"not a readable safetensors file (tensor {name!r} has no valid data offsets)")
        ends.append(offsets[1])
    return max(ends)


def header_metadata(header: dict, path: Path) -> dict | None:
    """The JSON metadata save_tensors stores in a safetensors header (None when it has none)."""
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or "json" not in meta:
        return None
    try:
        decoded = json.loads(meta["json"])
    except (ValueError, TypeError, RecursionError):
        raise damaged(path, "its metadata is not JSON") from None
    if not isinstance(decoded, dict):
        raise damaged(path, f"its metadata is {a(json_type(decoded))}, not an object")
    return decoded


def load_tensors(path: Path, expect=None) -> tuple[dict[str, torch.Tensor], dict | None]:
    """Every tensor of a safetensors file and its JSON metadata (None when it has none).

    The header is read first, and `expect(header)`, when given, checks it (raising a RunError for
    a file that is not what the caller needs) before the tensors are read: a file is read whole
    only once its header describes what the run's model implies, and exactly as many bytes as
    follow it. All of it comes through one open: a rename that replaces the file meanwhile leaves
    this reader all of the old one. (safetensors' safe_open reads the header through one open and,
    for PyTorch, maps the tensors through another, so it can mix two versions of the file.)"""
    f, size = open_run_file(path)
    with f:
        try:
            header = read_header(f, size, path)
            if expect is not None:
                expect(header)
            described, following = header_data_bytes(header, path), size - f.tell()
            if described != following:
                raise damaged(path, f"not a readable safetensors file (its header describes {described:,} bytes of "
                                    f"tensors, but {following:,} follow it)")
            f.seek(0)
            raw = f.read(size + 1)
        except OSError as e:
            raise unreadable(path, e) from None
    if len(raw) != size:
        raise damaged(path, "it changed size while being read (is another program writing it?)")
    try:
        tensors = st_load(raw)
    except (SafetensorError, ValueError, TypeError, RuntimeError, OverflowError, RecursionError) as e:
        raise damaged(path, f"not a readable safetensors file ({one_line(e)})") from None
    return tensors, header_metadata(header, path)


def tensor_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], torch.dtype | None]]:
    """Name -> (shape, dtype) of every tensor in a safetensors file, from its header alone."""
    f, size = open_run_file(path)
    with f:
        try:
            return header_shapes(read_header(f, size, path), path)
        except OSError as e:
            raise unreadable(path, e) from None


def tensor_bytes(model: torch.nn.Module) -> int:
    """Bytes of a model's tensors, its state dict (the model may live on the meta device)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                      "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
                      "BOOL": torch.bool}


def json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return {dict: "object", list: "list", str: "string", int: "integer", float: "number"}.get(type(value), type(value).__name__)


def a(noun: str) -> str:
    """ "an object", "a list", but "null" alone."""
    return noun if noun == "null" else ("an " if noun[0] in "aeiou" else "a ") + noun


def check_weights(expected: dict[str, torch.Tensor], found: dict[str, tuple[tuple[int, ...], torch.dtype]], source: Path) -> None:
    """The tensors of a weights file (`found`: name -> (shape, dtype)) are exactly those of the
    model config.json describes (`expected`, its state_dict, possibly on the meta device)."""
    def mismatch(what: str) -> RunError:
        return RunError(f"{source} does not match the model in {CONFIG} beside it: {what}; one of them is damaged "
                        f"or from another run; {RESTORE}")

    extra, lacking = sorted(set(found) - set(expected)), sorted(set(expected) - set(found))
    if lacking:
        raise mismatch(f"it lacks {', '.join(lacking[:3])}{', ...' if len(lacking) > 3 else ''}")
    if extra:
        raise mismatch(f"it has {', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''}, which the model has not")
    for k, t in expected.items():
        shape, dtype = found[k]
        if shape != tuple(t.shape):
            hint = " (a vocabulary of another size)" if k.split(".")[0] in ("wte", "lm_head", "counts", "W") else ""
            raise mismatch(f"{k} has shape {list(shape)} where the model needs {list(t.shape)}{hint}")
        if dtype != t.dtype:
            name = str(dtype).replace("torch.", "") if dtype is not None else "unknown"
            raise mismatch(f"{k} holds {name} values where the model needs {str(t.dtype).replace('torch.', '')}")


def check_section(section: dict, options: dict, where: str, path: Path, known_only: bool = False) -> None:
    """Each value of a config.json section obeys its option's declaration (config.py)."""
    for name, value in section.items():
        if name not in options:
            if known_only:
                raise damaged(path, f'{where} has an unknown setting "{name}" (written by another version of makemore?)')
            continue
        try:
            options[name].check(value)
        except OptionError as e:
            raise damaged(path, e.render(lambda option: f'{where}["{option}"]')) from None


def check_config(cfg, path: Path) -> None:
    """Every key of config.json that makemore reads has the type and range it needs, and the
    vocabulary agrees with the model's size: a damaged or foreign file is one clear RunError."""
    if not isinstance(cfg, dict):
        raise damaged(path, f"it holds a JSON {json_type(cfg)}, not an object")
    for key, kind in (("model", str), ("model_config", dict), ("vocab", list), ("train_config", dict), ("data", dict)):
        if key not in cfg:
            raise damaged(path, f'it has no "{key}"')
        if type(cfg[key]) is not kind:
            raise damaged(path, f'"{key}" is {a(json_type(cfg[key]))}, not {a(json_type(kind()))}')
    if cfg["model"] not in REGISTRY:
        raise RunError(f"{path.parent} holds a model this version of makemore does not know ({cfg['model']!r}); "
                       f"it knows {', '.join(REGISTRY)}")

    mc = cfg["model_config"]
    for name, high in (("vocab_size", MAX_VOCAB), ("max_len", MAX_ITEM_LENGTH)):  # the limits training keeps to
        value = mc.get(name)
        if type(value) is not int or value < 1 or value > high:
            raise damaged(path, f'"model_config"["{name}"] is {json.dumps(value)[:40]}, not a whole number in 1..{high}')
    check_section(mc, MODEL_OPTIONS, '"model_config"', path)

    vocab = cfg["vocab"]
    if not vocab:
        raise damaged(path, '"vocab" is empty')
    for i, ch in enumerate(vocab):
        if type(ch) is not str or len(ch) != 1 or ch == "\n":
            raise damaged(path, f'"vocab"[{i}] is {json.dumps(ch)[:40]}, not one character (other than a newline)')
    if len(set(vocab)) != len(vocab):
        raise damaged(path, '"vocab" lists a character twice')
    if len(vocab) > MAX_CHARS:
        raise damaged(path, f'"vocab" has {len(vocab):,} characters, more than the {MAX_CHARS:,} training takes')
    labels = cfg.get("labels", [])
    if (type(labels) is not list or not all(type(label) is str and 0 < len(label) <= MAX_LABEL_LENGTH for label in labels)
            or len(set(labels)) != len(labels) or len(labels) > MAX_LABELS):
        raise damaged(path, f'"labels" is not a list of at most {MAX_LABELS:,} distinct labels of 1 to {MAX_LABEL_LENGTH} '
                            'characters')
    if mc["vocab_size"] != len(vocab) + 1 + len(labels):
        raise damaged(path, f'"vocab" has {len(vocab)} characters and "labels" {len(labels)} labels but "model_config" '
                            f'says the model has {mc["vocab_size"]} tokens (the characters, the boundary and a start '
                            'token per label); the two disagree')

    check_section(cfg["train_config"], TRAIN_OPTIONS, '"train_config"', path, known_only=True)

    data = cfg["data"]
    for key, kind in (("source", str), ("fingerprint", str), ("split_seed", int)):
        if key not in data:
            raise damaged(path, f'"data" has no "{key}"')
        if type(data[key]) is not kind:
            raise damaged(path, f'"data"["{key}"] is {a(json_type(data[key]))}, not {a(json_type(kind()))}')
    if not data["source"]:
        raise damaged(path, '"data"["source"] is empty')
    if not 0 <= data["split_seed"] <= MAX_SEED:
        raise damaged(path, f'"data"["split_seed"] is {data["split_seed"]}, not a seed in 0..{MAX_SEED}')


class RunDir:
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

    def check_new(self, force: bool) -> None:
        """Refuse to start a run over an existing one unless `force`; never over a folder of other things."""
        if not self.path.exists() and not self.path.is_symlink():
            return
        if not self.path.is_dir():
            raise MakemoreError(f"{self.path} exists and is not a folder; choose another --out")
        if not any(p.name != LOCK for p in self.path.iterdir()) or self.is_unstarted():
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

    def read_config(self) -> dict:
        if not self.path.exists():
            raise RunError(f"run directory {self.path} not found; pass the --out directory of a `makemore train` run")
        if not self.path.is_dir():
            raise RunError(f"{self.path} is not a directory; pass the --out directory of a `makemore train` run")
        path = self.file(CONFIG)
        if not path.exists() and not path.is_symlink():
            raise RunError(f"{self.path} is not a makemore run directory (no {CONFIG}); pass the --out directory of a `makemore train` run")
        cfg = read_json(path)
        check_config(cfg, path)
        return cfg

    def write_config(self, cfg: dict) -> None:
        write_json(self.file(CONFIG), cfg)

    def save_model(self, model: torch.nn.Module) -> None:
        save_tensors(self.file(MODEL), model.state_dict())

    def check_weights(self, model: torch.nn.Module, name: str = MODEL) -> None:
        """The weights file holds the tensors of `model` (which may live on the meta device),
        read from the file's header alone: check this before building a model for real, and a
        config.json that describes a huge model cannot make memory explode."""
        check_weights(model.state_dict(), tensor_shapes(self.file(name)), self.file(name))

    def load_weights(self, model: torch.nn.Module, name: str = MODEL) -> None:
        """Load the weights file into `model`, its header checked against the model before the
        tensors are read: the file is read only when it is as large as the model implies."""
        path = self.file(name)
        tensors, _ = load_tensors(path, lambda header: check_weights(model.state_dict(), header_shapes(header, path), path))
        load_state(model, tensors, path)

    def append_metrics(self, record: dict) -> None:
        self.append_records(METRICS, [record])

    def read_metrics(self) -> list[dict]:
        return self.read_records(METRICS)

    def truncate_metrics(self, step: int) -> None:
        """Drop evaluations after `step`, the checkpoint a resumed run continues from."""
        self.rewrite_records(METRICS, [r for r in self.read_metrics() if r.get("step", 0) <= step])

    def append_records(self, name: str, records: list[dict]) -> None:
        """Append JSON lines and fsync: a crash can cut only the last line, which reading skips.
        The new lines start on a line of their own: a cut last line is removed first, and a
        complete one that lacks its newline gets it. A file is never grown past MAX_RECORDS_BYTES,
        the most that reading takes. A write that fails (a full disk) is cut back off, so the file
        holds what it held, and is a WriteFailed."""
        path = self.file(name)
        new = "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")
        try:  # non-blocking: a pipe put in the file's place fails at once instead of waiting for a reader
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NONBLOCK", 0)
                         | getattr(os, "O_BINARY", 0), 0o666)
        except OSError as e:
            raise WriteFailed(path, e) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise not_regular(path)
            size = info.st_size
            if size + len(new) + 1 > MAX_RECORDS_BYTES:
                advice = ("train a new run that records diagnostics less often (a larger --diagnostics-interval)"
                          if name == DIAGNOSTICS else "train a new run that evaluates less often (a larger --eval-interval)")
                raise RunError(f"{path} would grow past {MAX_RECORDS_BYTES:,} bytes, the most makemore reads back; {advice}")
            try:
                if size:
                    with open(path, "rb") as r:
                        tail_start, tail = last_line(r, size)
                    if tail is not None:  # the file does not end with a newline
                        if parse_record(tail) is None:
                            os.ftruncate(fd, tail_start)  # a line cut by a crash: drop it (reading skips it too)
                            size = tail_start
                        else:
                            new = b"\n" + new
                write_all(fd, new)
                os.fsync(fd)
            except OSError as e:
                try:
                    os.ftruncate(fd, size)  # nothing half-appended stays
                except OSError:
                    pass  # then reading skips the cut line, and the next append drops it
                raise WriteFailed(path, e) from None
        finally:
            os.close(fd)

    def read_records(self, name: str) -> list[dict]:
        """The JSON objects of a .jsonl file, one per line, each with an integer "step". The last
        line may have been cut by a crash during an append; it is skipped. Any other damaged line
        is an error naming the line: skipping it would silently lose the records after it."""
        path = self.file(name)
        if not path.exists() and not path.is_symlink():
            return []
        lines = read_run_file(path, MAX_RECORDS_BYTES).split(b"\n")
        records = []
        for number, line in enumerate(lines, 1):
            last = number == len(lines)  # after the final newline, or a line that never got one
            if not line.strip():
                continue
            record = parse_record(line)
            if record is None and last:
                break  # cut short by a crash mid-append: everything before it is good
            why = describe_bad_line(line) if not isinstance(record, dict) else record_problem(record)
            if why:
                raise damaged(path, f"line {number} {why}",
                              f"delete that line to keep the records around it, or {RESTORE}")
            records.append(record)
        return records

    def rewrite_records(self, name: str, records: list[dict]) -> None:
        atomic_write(self.file(name), "".join(json.dumps(r) + "\n" for r in records).encode("utf-8"))


def read_json(path: Path):
    """The JSON value of a run directory's .json file, at most MAX_JSON_BYTES, or one RunError."""
    raw = read_run_file(path, MAX_JSON_BYTES)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise damaged(path, f"it is not UTF-8 text (bad byte at offset {e.start})") from None
    except (ValueError, RecursionError) as e:
        raise damaged(path, f"it is not JSON ({one_line(e)})") from None


def run_vocabulary(config: dict) -> Vocabulary:
    """The vocabulary a run was trained with: its characters, and its labels if it has any."""
    return Vocabulary(config["vocab"], config.get("labels", []))


def run_dataset(config: dict, data: str | None = None, advice: str = "pass the original file with --data PATH") -> Dataset:
    """A run's data (or `data` instead), split as in training, encoded with the run's vocabulary.
    `advice` says how the caller's user can point at the data when it has moved or changed."""
    source = data or config["data"]["source"]
    limit = max(DEFAULT_ITEM_LENGTH, config["model_config"]["max_len"])  # the run's own items passed its limit
    try:
        dataset = Dataset.load(source, config["data"]["split_seed"], vocab=run_vocabulary(config), max_item_chars=limit)
    except DataError as e:
        if data is None:  # the reader's reason, without its advice (which is for a --data option)
            raise DataError(f"cannot read the run's training data ({str(e).split('; ')[0]}); {advice}") from None
        raise
    if data is None and dataset.fingerprint != config["data"]["fingerprint"]:
        raise RunError(f"the training data at {source} has changed since this run was trained; {advice}")
    return dataset


def last_line(f, size: int) -> tuple[int, bytes | None]:
    """(offset, bytes) of the text after the last newline of a non-empty file open for binary
    reading, or (size, None) when it ends with a newline. Reads back from the end only."""
    f.seek(size - 1)
    if f.read(1) == b"\n":
        return size, None
    end, tail = size, b""
    while end > 0:
        start = max(0, end - 4096)
        f.seek(start)
        tail = f.read(end - start) + tail
        cut = tail.rfind(b"\n")
        if cut >= 0:
            return size - len(tail) + cut + 1, tail[cut + 1 :]
        end = start
    return 0, tail


def parse_record(line: bytes):
    """The JSON value of one line, or None when it is not UTF-8 JSON."""
    try:
        return json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


METRIC_NUMBERS = ("train_loss", "val_loss", "lr", "chars_per_sec", "elapsed", "train_seconds")


def record_problem(record: dict) -> str | None:
    """What is wrong with a record read from a .jsonl file, or None."""
    step = record.get("step")
    if type(step) is not int or step < 0:
        return 'has no "step" that is a whole number >= 0'
    for key in METRIC_NUMBERS:
        if key in record and not is_number(record[key]):
            return f'has a "{key}" that is a {json_type(record[key])}, not a number'
    return None


def is_number(value) -> bool:
    return type(value) in (int, float)


def describe_bad_line(line: bytes) -> str:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"is not UTF-8 text (bad byte at column {e.start + 1})"
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return "is not JSON (cut short or garbled)"
    return f"is a JSON {json_type(value)}, not an object"


def load_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Load tensors into a model after checking that they are exactly its tensors: same names,
    shapes and dtypes (a vocabulary of another size shows as the embedding's or the output's shape)."""
    check_weights(model.state_dict(), {k: (tuple(v.shape), v.dtype) for k, v in tensors.items()}, source)
    model.load_state_dict(tensors)


def saved_bytes(state: dict) -> torch.Tensor:
    """A state dict of tensors and plain values as bytes in a tensor, for a safetensors file
    (torch.save; `loaded_bytes` reads it back without unpickling arbitrary objects)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)


def loaded_bytes(blob: torch.Tensor, source: Path, what: str):
    """What `saved_bytes` stored, read with torch.load(weights_only=True), which builds only tensors
    and plain values, never arbitrary objects; a blob that cannot be read is one RunError."""
    try:
        return torch.load(io.BytesIO(blob.numpy().tobytes()), weights_only=True)
    except Exception as e:  # noqa: BLE001 - an unreadable blob raises many kinds; every one means the same
        raise damaged(source, f"its {what} cannot be read ({one_line(e)})") from None
