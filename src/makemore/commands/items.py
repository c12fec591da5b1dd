"""What `score`, `classify` and `eval` are given: a run (or the bundled model) and items, as arguments,
from a file (--items FILE) or from standard input (`-`), handed on a chunk at a time."""

from __future__ import annotations

import argparse
import os
import sys
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import DataError, MakemoreError

CHUNK = 1024  # items scored at once: memory stays that of a chunk however many come
RUN_HELP = "run directory (default: the bundled model, an lstm trained on names-sex)"
STDIN = "-"


def add_items(p: argparse.ArgumentParser, what: str) -> None:
    """[RUN] TEXT... and --items FILE: a first argument that is a directory (or names one, with a /)
    is the run; every other argument is an item, `-` standing for standard input's lines."""
    p.add_argument("text", nargs="*", metavar="[RUN] TEXT", help=f"{RUN_HELP}, then the items to {what} ('-': read "
                                                                  "them from standard input, one per line)")
    p.add_argument("--items", metavar="FILE", help=f"also {what} every line of FILE ('-': standard input)")


def run_and_texts(args) -> tuple[str | None, list[str]]:
    """The run directory given first, if any, and the item arguments after it."""
    words = list(args.text)
    if words and words[0] != STDIN and (os.path.isdir(words[0]) or os.sep in words[0] or "/" in words[0]):
        return words[0], words[1:]
    return None, words


def load_run(path: str | None, device: str, doing: str):
    """The run given, or else the bundled model, saying so on stderr."""
    from ..api import PRETRAINED, load, load_pretrained

    if path is not None:
        return load(path, device=device)
    pretrained = load_pretrained(device=device)
    print(f"makemore: no run given, so {doing} with the bundled model ({pretrained.config['model']} trained on "
          f"{pretrained.config['data']['source']}, in {PRETRAINED}); pass a run directory to use your own", file=sys.stderr)
    return pretrained


def items_given(texts: list[str], items_file: str | None) -> Iterator[str]:
    """The TEXT arguments in order (`-` replaced by standard input's lines), then --items FILE's lines;
    blank lines are skipped, each line stripped, as data files are read. What is wrong with the
    arguments or the file is said now, before a model is loaded; standard input is read as it comes."""
    if not texts and items_file is None:
        raise MakemoreError("give items to work on: as arguments, with --items FILE, or '-' to read standard input")
    if texts.count(STDIN) + (items_file == STDIN) > 1:
        raise MakemoreError("standard input ('-') can be read once; give it once")
    listed = file_lines(items_file) if items_file not in (None, STDIN) else []

    def given():
        for text in texts:
            yield from stdin_lines() if text == STDIN else [text]
        yield from stdin_lines() if items_file == STDIN else listed

    return given()


def stdin_lines() -> Iterator[str]:
    """Standard input's items, read as they come (a pipe of millions is never all in memory)."""
    stream = open(sys.stdin.fileno(), encoding="utf-8", errors="strict", closefd=False, newline="")
    try:
        for number, line in enumerate(stream, 1):
            item = line.strip()
            if item:
                yield item
    except UnicodeDecodeError:
        raise DataError(f"standard input is not UTF-8 text (line {number}); convert it, e.g. with iconv") from None


def file_lines(path: str) -> list[str]:
    from ..data import read_lines

    if Path(path).is_dir():
        raise DataError(f"{path} is a directory; pass --items a text file with one item per line")
    return [item for _, item in read_lines(Path(path))]


def chunks(items: Iterable[str], size: int = CHUNK) -> Iterator[list[str]]:
    it = iter(items)
    while part := list(islice(it, size)):
        yield part


def problem(run, text: str) -> str | None:
    """Why `run` cannot score `text` (an unknown character, too long, empty), or None."""
    item = text.strip()
    if not item:
        return "an item needs at least one character"
    unknown = run.vocab.unknown(item)
    if unknown:
        return f"has characters the model never saw in training ({', '.join(map(repr, unknown))}); {run.vocab.known(item)}"
    if len(item) > run.model_config.max_len:
        return f"has {len(item)} characters, more than the {run.model_config.max_len} this model takes"
    return None
