"""Results as text: sampled items as txt, json or csv, written as they are drawn (to a file, whole
or not at all), and a per-character explanation as a table a person can read."""

from __future__ import annotations

import csv
import io
import json
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from .config import FORMATS
from .store import atomic_file
from .errors import MakemoreError, WriteFailed
from .explain import Position
from .sample import Score


def format_of(out: str | None, fmt: str | None) -> str:
    """The format asked for, else the one --out's extension names, else txt."""
    if fmt is not None:
        return fmt
    suffix = Path(out).suffix.lower().lstrip(".") if out else ""
    return suffix if suffix in FORMATS else "txt"


class ItemWriter:
    """Items written to a text stream chunk by chunk, as they are drawn, in one of FORMATS:
    txt, one item per line; json, one list of the items (exactly json.dumps of the list); csv, a
    header, then each item and its nll_per_char. `close` ends the output."""

    def __init__(self, out: TextIO, fmt: str):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        self.out, self.fmt, self.count = out, fmt, 0
        if fmt == "csv":
            self.csv = csv.writer(out, lineterminator="\n")
            self.csv.writerow(["item", "nll_per_char"])

    def write(self, items: list[str], scores: list[Score] | None = None) -> None:
        """More items; csv needs their scores."""
        if self.fmt == "txt":
            self.out.write("".join(item + "\n" for item in items))
        elif self.fmt == "json":
            for item in items:
                self.out.write(("[" if self.count == 0 else ", ") + json.dumps(item, ensure_ascii=False))
                self.count += 1
            return
        else:
            self.csv.writerows([s.text, f"{s.nll_per_char:.4f}"] for s in scores)
        self.count += len(items)

    def close(self) -> None:
        if self.fmt == "json":
            self.out.write("[]\n" if self.count == 0 else "]\n")


def render(items: list[str], fmt: str, scores: list[Score] | None = None) -> str:
    """All of the items as ItemWriter writes them."""
    buffer = io.StringIO(newline="")
    writer = ItemWriter(buffer, fmt)
    writer.write(items, scores)
    writer.close()
    return buffer.getvalue()


def check_out(path: str, force: bool) -> Path:
    """Refuse, before any work, a --out that cannot be written or would replace a file without --force."""
    out = Path(path)
    if out.is_dir():
        raise MakemoreError(f"--out {path} is a directory; name a file")
    if not out.parent.is_dir():
        raise MakemoreError(f"--out {path}: the folder {out.parent} does not exist; create it first")
    if out.exists() and not force:
        raise MakemoreError(f"--out {path} exists; pass --force to replace it, or name another file")
    return out


@contextmanager
def out_file(path: str, force: bool):
    """A text stream (UTF-8, "\\n" line ends) whose whole content appears at `path` when the block
    ends, or nothing does: written to a temporary file beside it and renamed over it then
    (checkpoint.atomic_file). A full disk or a read-only folder is one WriteFailed."""
    out = check_out(path, force)
    try:
        with atomic_file(out) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            yield text
            text.flush()
            text.detach()  # atomic_file closes the file itself, after its fsync
            check_out(path, force)  # again, before the rename: the file may have appeared while sampling
    except WriteFailed as e:
        raise WriteFailed(f"--out {path}", e.error) from None


def shown(char: str, end: bool) -> str:
    """A character as the table shows it: the end boundary as 'end', a space as '␣'."""
    return "end" if end else "␣" if char == " " else char


def explanation(text: str, positions: list[Position]) -> str:
    """One line per predicted position: the character, the probability the model gave it, its rank,
    and the model's most likely characters there."""
    nll = sum(p.surprise for p in positions)
    lines = [f"{text}  nll {nll:.4f}  per char {nll / len(positions):.4f}",
             f"  {'char':<5}{'prob':>8}{'rank':>6}  model's top choices"]
    for p in positions:
        top = "  ".join(f"{shown(a.char, a.end)} {100 * a.prob:.1f}%" for a in p.top)
        lines.append(f"  {shown(p.char, p.end):<5}{100 * p.prob:>7.2f}%{p.rank:>6}  {top}")
    return "\n".join(lines)
