"""Files of a run directory, written whole or not at all and read only when they are what they
should be: atomic writes (a temporary name, then a rename), bounded reads of regular files, and
the one-line errors that name a file and say what to do."""

from __future__ import annotations

import json
import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path

from ..config import MAX_JSON_BYTES
from ..data import NotRegular, TooLarge, read_regular
from ..errors import RunError, WriteFailed

CONFIG = "config.json"  # the run's description, beside which every other file is read
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


def read_json(path: Path):
    """The JSON value of a run directory's .json file, at most MAX_JSON_BYTES, or one RunError."""
    raw = read_run_file(path, MAX_JSON_BYTES)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise damaged(path, f"it is not UTF-8 text (bad byte at offset {e.start})") from None
    except (ValueError, RecursionError) as e:
        raise damaged(path, f"it is not JSON ({one_line(e)})") from None


def json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return {dict: "object", list: "list", str: "string", int: "integer", float: "number"}.get(type(value), type(value).__name__)


def a(noun: str) -> str:
    """ "an object", "a list", but "null" alone."""
    return noun if noun == "null" else ("an " if noun[0] in "aeiou" else "a ") + noun
