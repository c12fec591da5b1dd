"""Results as text: sampled items as txt, json or csv (to a file, whole or not at all), and a
per-character explanation as a table a person can read."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from .checkpoint import atomic_write
from .errors import MakemoreError
from .explain import Position
from .sample import Score

FORMATS = ("txt", "json", "csv")


def format_of(out: str | None, fmt: str | None) -> str:
    """The format asked for, else the one --out's extension names, else txt."""
    if fmt is not None:
        return fmt
    suffix = Path(out).suffix.lower().lstrip(".") if out else ""
    return suffix if suffix in FORMATS else "txt"


def render(items: list[str], fmt: str, scores: list[Score] | None = None) -> str:
    """txt: one item per line; json: a list of the items; csv: a header, then item and nll_per_char."""
    if fmt == "txt":
        return "".join(item + "\n" for item in items)
    if fmt == "json":
        return json.dumps(items, ensure_ascii=False) + "\n"
    if fmt == "csv":
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["item", "nll_per_char"])
        writer.writerows([s.text, f"{s.nll_per_char:.4f}"] for s in scores)
        return buffer.getvalue()
    raise ValueError(f"unknown format {fmt!r}")


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


def write(path: str, text: str, force: bool) -> None:
    """The whole text under `path`, or nothing: written to a temporary file and renamed over it."""
    out = check_out(path, force)  # again: the file may have appeared while sampling
    try:
        atomic_write(out, text.encode("utf-8"))
    except OSError as e:
        raise MakemoreError(f"cannot write --out {path} ({e.strerror or e}); check the folder's permissions") from None


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
