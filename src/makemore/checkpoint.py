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
from contextlib import contextmanager
from pathlib import Path

import torch
from filelock import FileLock, Timeout
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .config import MODEL_OPTIONS, TRAIN_OPTIONS, OptionError
from .data import MAX_ITEM_CHARS, Dataset, Vocabulary
from .errors import DataError, MakemoreError, RunError
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
STEP_LOSS = "train.step_loss"  # in STATE: the training loss of every step, for `makemore plot --kind loss`
# a temporary file of atomic_write: ".NAME.RANDOM.tmp" (RANDOM from secrets, or from mkstemp in older versions)
TEMPORARY = re.compile(r"\.(?P<name>.+)\.[A-Za-z0-9_]{6,}\.tmp")
MAX_CONFIG_BYTES = 16 << 20  # a real config.json is a few kB (its vocabulary at most a few hundred kB)
MAX_LEN = 100_000  # the longest item a run may declare: bounds position tables and sampling loops
RESTORE = "restore the run directory from a copy or train it again"


def damaged(path: Path, what: str, todo: str = RESTORE) -> RunError:
    """The one-line error for a run-directory file that cannot be used."""
    return RunError(f"{path} is damaged: {what}; {todo}")


def atomic_write(path: Path, data: bytes) -> None:
    """Write bytes so that `path` holds either its old content or all of `data`, never a part.
    The file is created with mode 0o666 less the umask, like any file a program creates (mkstemp
    would make it 0o600, unlike metrics.jsonl beside it)."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
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


def missing(path: Path) -> RunError:
    return RunError(f"{path} is missing: the run directory is incomplete (was training stopped before its first "
                    f"checkpoint?); {RESTORE}")


def unreadable(path: Path, e: OSError) -> RunError:
    return RunError(f"cannot read {path} ({e.strerror or e}); check its permissions")


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def read_whole(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise missing(path) from None
    except OSError as e:
        raise unreadable(path, e) from None


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """Every tensor of a safetensors file and its JSON metadata (None when it has none).
    The file is read whole through one open: a rename that replaces it meanwhile leaves this
    reader all of the old file. (safetensors' safe_open reads the header through one open and,
    for PyTorch, maps the tensors through another, so it can mix two versions of the file.)"""
    raw = read_whole(path)
    try:
        tensors = st_load(raw)
        header = header_json(raw)
    except (SafetensorError, ValueError, TypeError, RuntimeError, OverflowError, RecursionError) as e:
        raise damaged(path, f"not a readable safetensors file ({one_line(e)})") from None
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or "json" not in meta:
        return tensors, None
    try:
        decoded = json.loads(meta["json"])
    except (ValueError, TypeError, RecursionError):
        raise damaged(path, "its metadata is not JSON") from None
    if not isinstance(decoded, dict):
        raise damaged(path, f"its metadata is {a(json_type(decoded))}, not an object")
    return tensors, decoded


def header_json(raw: bytes) -> dict:
    """The JSON header of safetensors bytes: an 8-byte little-endian length, then that much JSON."""
    if len(raw) < 8:
        raise ValueError(f"{len(raw)} bytes, shorter than the 8-byte header length")
    n = int.from_bytes(raw[:8], "little")
    if n > len(raw) - 8:
        raise ValueError(f"the header says it is {n:,} bytes long, but the file has {len(raw) - 8:,} after it")
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    return header


def tensor_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], torch.dtype | None]]:
    """Name -> (shape, dtype) of every tensor in a safetensors file, from its header alone."""
    try:
        with open(path, "rb") as f:
            start = f.read(8)
            n = int.from_bytes(start, "little") if len(start) == 8 else 0
            size = os.fstat(f.fileno()).st_size
            header = header_json(start + f.read(min(n, max(size - 8, 0))))
    except FileNotFoundError:
        raise missing(path) from None
    except OSError as e:
        raise unreadable(path, e) from None
    except (ValueError, RecursionError) as e:
        raise damaged(path, f"not a readable safetensors file ({one_line(e)})") from None
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise damaged(path, f"not a readable safetensors file (tensor {name!r} has no valid shape)")
        out[name] = (tuple(shape), SAFETENSORS_DTYPES.get(entry.get("dtype")))
    return out


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
    for name, high in (("vocab_size", None), ("max_len", MAX_LEN)):
        value = mc.get(name)
        if type(value) is not int or value < 1 or (high and value > high):
            raise damaged(path, f'"model_config"["{name}"] is {json.dumps(value)[:40]}, not a whole number in 1..{high or "any"}')
    check_section(mc, MODEL_OPTIONS, '"model_config"', path)

    vocab = cfg["vocab"]
    if not vocab:
        raise damaged(path, '"vocab" is empty')
    for i, ch in enumerate(vocab):
        if type(ch) is not str or len(ch) != 1 or ch == "\n":
            raise damaged(path, f'"vocab"[{i}] is {json.dumps(ch)[:40]}, not one character (other than a newline)')
    if len(set(vocab)) != len(vocab):
        raise damaged(path, '"vocab" lists a character twice')
    labels = cfg.get("labels", [])
    if type(labels) is not list or not all(type(label) is str and label for label in labels) or len(set(labels)) != len(labels):
        raise damaged(path, '"labels" is not a list of distinct, non-empty labels')
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
            pid = self.file(LOCK).read_text(encoding="ascii").strip()
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
        self.path.mkdir(parents=True, exist_ok=True)
        for name in TRAINING_OUTPUTS:
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
        path = self.file(CONFIG)
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_CONFIG_BYTES + 1)
        except FileNotFoundError:
            raise RunError(f"{self.path} is not a makemore run directory (no {CONFIG}); pass the --out directory of a `makemore train` run") from None
        except OSError as e:
            raise unreadable(path, e) from None
        if len(raw) > MAX_CONFIG_BYTES:
            raise damaged(path, f"it is larger than {MAX_CONFIG_BYTES >> 20} MB")
        try:
            cfg = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise damaged(path, f"it is not UTF-8 text (bad byte at offset {e.start})") from None
        except (ValueError, RecursionError) as e:
            raise damaged(path, f"it is not JSON ({one_line(e)})") from None
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
        """Append JSON lines and fsync: a crash can cut only the last line, which reading skips.
        The new lines start on a line of their own: a cut last line is removed first, and a
        complete one that lacks its newline gets it."""
        path = self.file(name)
        with open(path, "ab") as f:
            size = f.seek(0, os.SEEK_END)
            if size:
                with open(path, "rb") as r:
                    tail_start, tail = last_line(r, size)
                if tail is not None:  # the file does not end with a newline
                    if parse_record(tail) is None:
                        f.truncate(tail_start)  # a line cut by a crash: drop it (reading skips it too)
                    else:
                        f.write(b"\n")
            f.write("".join(json.dumps(r) + "\n" for r in records).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())

    def read_records(self, name: str) -> list[dict]:
        """The JSON objects of a .jsonl file, one per line, each with an integer "step". The last
        line may have been cut by a crash during an append; it is skipped. Any other damaged line
        is an error naming the line: skipping it would silently lose the records after it."""
        path = self.file(name)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as e:
            raise unreadable(path, e) from None
        lines = raw.split(b"\n")
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


def run_vocabulary(config: dict) -> Vocabulary:
    """The vocabulary a run was trained with: its characters, and its labels if it has any."""
    return Vocabulary(config["vocab"], config.get("labels", []))


def run_dataset(config: dict, data: str | None = None, advice: str = "pass the original file with --data PATH") -> Dataset:
    """A run's data (or `data` instead), split as in training, encoded with the run's vocabulary.
    `advice` says how the caller's user can point at the data when it has moved or changed."""
    source = data or config["data"]["source"]
    limit = max(MAX_ITEM_CHARS, config["model_config"]["max_len"])  # the run's own items passed its limit
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


STATE_NUMBERS = {"step": (int,), "elapsed": (int, float), "best_val": (int, float), "average_updates": (int,)}
# tensors of state.safetensors that --resume reads besides the model's and the average's
STATE_TENSORS = {"rng.batches": (torch.uint8, 1), "rng.torch": (torch.uint8, 1), STEP_LOSS: (torch.float32, 1),
                 "optimizer": (torch.uint8, 1)}


def check_state_meta(meta, source: Path) -> dict:
    """The metadata of state.safetensors (trainer.TrainState) has what --resume reads, with the right types."""
    if not isinstance(meta, dict):
        raise damaged(source, "it has no training state (no metadata)", "start a new run")
    for key, types in STATE_NUMBERS.items():
        if key not in meta:
            raise damaged(source, f'its training state has no "{key}"')
        if type(meta[key]) not in types or (key == "step" or key == "average_updates") and meta[key] < 0:
            raise damaged(source, f'its training state\'s "{key}" is {json.dumps(meta[key])[:40]}, not a number it can use')
    if "eval_seconds" in meta and type(meta["eval_seconds"]) not in (int, float):  # absent in runs made before it was kept
        raise damaged(source, f'its training state\'s "eval_seconds" is {json.dumps(meta["eval_seconds"])[:40]}, not a number')
    return meta


def read_state(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and metadata of state.safetensors, checked for what --resume reads: the
    metadata's numbers, the random states, the step losses and the optimiser's bytes. (The
    model's and the average's tensors are checked as they are loaded: load_state;
    the optimiser's by restore_optimizer.)"""
    tensors, meta = load_tensors(path)
    check_state_meta(meta, path)
    for name, (dtype, dims) in STATE_TENSORS.items():
        t = tensors.get(name)
        if t is None:
            raise damaged(path, f"its training state has no {name}", "start a new run (a state from an older makemore "
                                                                     "cannot be resumed)" if name == "optimizer" else RESTORE)
        if t.dtype != dtype or t.dim() != dims:
            raise damaged(path, f"its {name} is a {t.dim()}-d {str(t.dtype).replace('torch.', '')} tensor, "
                                f"not a {dims}-d {str(dtype).replace('torch.', '')} one")
    return tensors, meta


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


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Load the optimiser state saved in the "optimizer" tensor (saved_bytes) into `opt`, after
    checking that it comes from the same kind of optimiser over the same parameters: torch would
    otherwise accept SGD's state into AdamW, or a moment of the wrong shape, and fail later with a
    traceback or train on garbage."""
    kind = type(opt).__name__
    saved = loaded_bytes(tensors["optimizer"], source, "optimiser state")
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict) or not isinstance(saved.get("param_groups"), list):
        raise damaged(source, "its optimiser state is not an optimiser's state")
    now, groups = opt.state_dict()["param_groups"], saved["param_groups"]
    if len(groups) != len(now) or not all(isinstance(g, dict) for g in groups):
        raise damaged(source, f"its optimiser state has {len(groups)} parameter groups where this run's {kind} has {len(now)}")
    for g_saved, g_now in zip(groups, now):
        if set(g_saved) != set(g_now):
            other = sorted(set(g_saved) ^ set(g_now))
            raise damaged(source, f"its optimiser state was written by another optimiser than {kind} "
                                  f"(settings {', '.join(other[:4])} differ)")
        if g_saved["params"] != g_now["params"]:
            raise damaged(source, "its optimiser state covers other parameters than the model in config.json")
    params = {i: p for g_now, g in zip(now, opt.param_groups) for i, p in zip(g_now["params"], g["params"])}
    for idx, entry in saved["state"].items():
        if idx not in params or not isinstance(entry, dict):
            raise damaged(source, f"its optimiser state has an entry {idx!r} for no parameter of the model")
        for key, value in entry.items():
            if torch.is_tensor(value) and value.dim() > 0 and value.shape != params[idx].shape:
                raise damaged(source, f"its optimiser state {idx}.{key} has shape {list(value.shape)} where the parameter "
                                      f"has {list(params[idx].shape)}")
    try:
        opt.load_state_dict(saved)
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise damaged(source, f"its optimiser state does not fit this run's {kind} ({one_line(e)})") from None
