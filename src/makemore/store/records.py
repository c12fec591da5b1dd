"""Records: .jsonl files of one JSON object per line (metrics.jsonl, diagnostics.jsonl), appended
so that a crash or a full disk can cut only the last line, which reading skips."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ..config import MAX_RECORDS_BYTES
from ..errors import RunError, WriteFailed
from .files import RESTORE, atomic_write, damaged, json_type, not_regular, read_run_file, write_all

def append_records(path: Path, records: list[dict], advice: str) -> None:
    """Append JSON lines and fsync: a crash can cut only the last line, which reading skips.
    The new lines start on a line of their own: a cut last line is removed first, and a
    complete one that lacks its newline gets it. A file is never grown past MAX_RECORDS_BYTES,
    the most that reading takes (`advice` says what to do then). A write that fails (a full disk) is cut back off, so the file
    holds what it held, and is a WriteFailed."""
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

def read_records(path: Path) -> list[dict]:
    """The JSON objects of a .jsonl file, one per line, each with an integer "step". The last
    line may have been cut by a crash during an append; it is skipped. Any other damaged line
    is an error naming the line: skipping it would silently lose the records after it."""
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


def rewrite_records(path: Path, records: list[dict]) -> None:
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in records).encode("utf-8"))


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
