"""A data file read once into flat tokens: streamed in blocks, encoded by a lookup table, cached.

`tokenize` reads a file READ_BLOCK_BYTES at a time: each block's lines are stripped in one pass,
joined, and encoded all at once (their code points through a lookup table), so no list of the
file's strings is ever held. Tokens are numbered in order of first appearance while reading and
renumbered to the sorted vocabulary at the end, then stored in the smallest integer type the
vocabulary fits, with each item's offset and (labelled data) its label's start token.

Anything unusual (UTF-16 or UTF-32, bad bytes, a NUL, a stray byte-order mark, an over-long
line, some lines labelled and some not) is handed to data.py's whole-file reader, which either
reads it or raises the one-line error that names the line.

The cache. A file of CACHE_FROM_BYTES or more is prepared once into

    $MAKEMORE_CACHE/tokens-SHA256/   (default ~/.cache/makemore; SHA256: of the file's bytes)
        meta.json      vocabulary, labels, item count, longest item, the fingerprint of the items
        tokens.npy     the tokens, file order
        offsets.npy    int64, items + 1
        starts.npy     labelled data: each item's start token
        split-SEED.npy the split's permutation for that split seed (random.Random(SEED).shuffle)

and later runs, `eval`, `sample --novel` and `--resume` memory-map it. An entry is written in a
temporary folder and renamed into place whole, under a file lock, so processes sharing the cache
(torchrun ranks, machines sharing the folder) prepare it once and never read half of one. A cache
that cannot be written (read-only, full) is skipped: the file is then read as a small one is.
Delete the folder to reclaim the space; nothing else refers to it.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from . import data
from .config import CACHE_FROM_BYTES, MAX_LABEL_LENGTH, READ_BLOCK_BYTES
from .shuffle import shuffled
from .tokens import token_dtype

FORMAT = 1  # of a cache entry; an entry of another format is prepared again beside it
PROVISIONAL = np.uint16  # tokens numbered as first seen: the vocabulary's limits fit (MAX_VOCAB)


@dataclass
class Prepared:
    """A data file's items as flat tokens (file order) with the vocabulary of their characters."""

    tokens: np.ndarray  # every item's characters, end to end
    offsets: np.ndarray  # int64: item r is tokens[offsets[r]:offsets[r + 1]]
    starts: np.ndarray | None  # labelled data: each item's start token (its label's)
    alphabet: list[str]
    labels: list[str]
    fingerprint: str  # data.fingerprint of the lines as read
    longest: int  # characters in the longest item
    entry: Path | None = None  # the cache entry it was mapped from

    @property
    def items(self) -> int:
        return len(self.offsets) - 1


class Unusual(Exception):
    """Something the whole-file reader (data.read_lines, data.split_labels) should read or word."""


class Tokenizer:
    """Items added a block at a time, numbered by a code-point lookup table as characters appear."""

    def __init__(self, sink=None):
        self.lut = np.full(128, -1, dtype=np.int32)  # code point -> provisional token; grown for wider characters
        self.chars: list[str] = []  # provisional token p is chars[p]
        self.label_ids: dict[str, int] = {}
        self.parts: list[np.ndarray] = []  # provisional tokens, when there is no sink
        self.sink = sink  # a binary file the provisional tokens are written to instead
        self.lengths: list[np.ndarray] = []
        self.starts: list[np.ndarray] = []
        self.hash = hashlib.sha256()
        self.count = self.tokens = self.longest = 0
        self.labelled: bool | None = None

    def add(self, items: list[str], labels: list[str] | None = None) -> None:
        if not items:
            return
        lines = items if labels is None else [f"{i}{data.LABEL_SEPARATOR}{l}" for i, l in zip(items, labels)]
        self.hash.update((("\n" if self.count else "") + "\n".join(lines)).encode("utf-8"))
        joined = "".join(items)
        if joined.isascii():
            points = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
            seen = np.flatnonzero(np.bincount(points, minlength=128))
            new = [chr(c) for c in seen if self.lut[c] < 0]
        else:
            points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="<u4")
            new = [ch for ch in set(joined) if ord(ch) >= len(self.lut) or self.lut[ord(ch)] < 0]
        for ch in sorted(new):
            if ord(ch) >= len(self.lut):
                self.lut = np.concatenate([self.lut, np.full(max(ord(ch) + 1 - len(self.lut), len(self.lut)), -1, np.int32)])
            if len(self.chars) >= np.iinfo(PROVISIONAL).max:
                raise Unusual("too many characters")  # data.check_vocabulary words it
            self.lut[ord(ch)] = len(self.chars)
            self.chars.append(ch)
        ids = self.lut[points].astype(PROVISIONAL)
        if self.sink is None:
            self.parts.append(ids)
        else:
            self.sink.write(ids.tobytes())
        lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
        self.lengths.append(lengths)
        if labels is not None:
            ids = [self.label_ids.setdefault(label, len(self.label_ids)) for label in labels]
            self.starts.append(np.array(ids, dtype=np.int32))
        self.count += len(items)
        self.tokens += len(points)
        self.longest = max(self.longest, int(lengths.max()))

    def finish(self, provisional: np.ndarray, write=None) -> Prepared:
        """The tokens renumbered to the sorted vocabulary, in its dtype. `provisional`: all the
        provisional tokens (the parts joined, or the sink's file mapped); `write(name, array)`
        stores an array and gives it back mapped (the cache), else arrays stay in memory."""
        alphabet = sorted(self.chars)
        labels = sorted(self.label_ids)
        dtype = token_dtype(len(alphabet) + 1 + len(labels))
        rank = {ch: i + 1 for i, ch in enumerate(alphabet)}
        renumber = np.array([rank[ch] for ch in self.chars] or [0], dtype=dtype)
        keep = write or (lambda name, array: array)
        if write is None:
            tokens = renumber[provisional]
        else:
            tokens = write.empty("tokens", dtype, len(provisional))
            for i in range(0, len(provisional), READ_BLOCK_BYTES):
                tokens[i : i + READ_BLOCK_BYTES] = renumber[provisional[i : i + READ_BLOCK_BYTES]]
            tokens = write.done("tokens", tokens)
        offsets = keep("offsets", np.concatenate([[0], np.cumsum(np.concatenate(self.lengths))]).astype(np.int64))
        starts = None
        if self.starts:
            first = len(alphabet) + 1
            token_of = np.array([first + labels.index(label) for label in self.label_ids], dtype=dtype)
            starts = keep("starts", token_of[np.concatenate(self.starts)])
        return Prepared(tokens, offsets, starts, alphabet, labels, self.hash.hexdigest(), self.longest)


def text_blocks(path: Path):
    """The text of a UTF-8 file (a BOM allowed) in blocks of whole lines; Unusual for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError:
        raise Unusual("unreadable") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Unusual("not a regular file")
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        rest, first = "", True
        while True:
            raw = f.read(READ_BLOCK_BYTES)
            if first and any(raw.startswith(bom) for bom, _ in data.BOMS):
                raise Unusual("UTF-16 or UTF-32")
            first = False
            if b"\0" in raw:
                raise Unusual("NUL")
            try:
                text = rest + decoder.decode(raw, final=not raw)
            except UnicodeDecodeError:
                raise Unusual("not UTF-8") from None
            if not raw:
                if text:
                    yield text
                return
            cut = text.rfind("\n") + 1
            if cut:
                yield text[:cut]
            rest = text[cut:]


def read_block(text: str, max_item_chars: int, labelled: bool | None) -> tuple[list[str], list[str] | None]:
    """The items (and labels) of a block of whole lines, read as data.read_lines and
    data.split_labels read them; Unusual where they would refuse or word something."""
    if data.BOM in text:
        raise Unusual("BOM")
    items = [line.strip() for line in text.split("\n")]
    if max(map(len, items)) > max_item_chars:
        raise Unusual("too long")
    items = list(filter(None, items))
    if not items:
        return [], None
    tabbed = data.LABEL_SEPARATOR in text and sum(data.LABEL_SEPARATOR in item for item in items)
    if tabbed and tabbed < len(items) or labelled is not None and labelled != bool(tabbed):
        raise Unusual("some lines labelled")
    if not tabbed:
        return items, None
    pairs = [item.rpartition(data.LABEL_SEPARATOR) for item in items]
    items, labels = [item.strip() for item, _, _ in pairs], [label.strip() for _, _, label in pairs]
    if not all(items) or not all(labels) or max(map(len, labels)) > MAX_LABEL_LENGTH:
        raise Unusual("a bad label")
    return items, labels


def tokenize(path: Path, max_item_chars: int, sink=None) -> Tokenizer:
    """Every item of `path` added to a Tokenizer (writing to `sink`), streamed; Unusual as read_block."""
    tokenizer = Tokenizer(sink)
    for text in text_blocks(path):
        items, labels = read_block(text, max_item_chars, tokenizer.labelled)
        if items:
            tokenizer.labelled = labels is not None
        tokenizer.add(items, labels)
    if not tokenizer.count:
        raise Unusual("no items")
    return tokenizer


def read_whole(path: Path, max_item_chars: int) -> Tokenizer:
    """The whole-file reader's items (or its error), tokenized."""
    numbered = data.read_lines(path, max_item_chars)
    items, labels = data.split_labels([line for _, line in numbered], [n for n, _ in numbered], path)
    tokenizer = Tokenizer()
    tokenizer.add(items, labels)
    return tokenizer


def in_memory(path: Path, max_item_chars: int) -> Prepared:
    try:
        tokenizer = tokenize(path, max_item_chars)
    except Unusual:
        tokenizer = read_whole(path, max_item_chars)
    return tokenizer.finish(np.concatenate(tokenizer.parts))


def cache_root() -> Path:
    """$MAKEMORE_CACHE, else $XDG_CACHE_HOME/makemore, else ~/.cache/makemore."""
    if os.environ.get("MAKEMORE_CACHE"):
        return Path(os.environ["MAKEMORE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "makemore"


def file_digest(path: Path) -> str | None:
    """sha256 of a regular file's bytes, or None (not a regular file, unreadable: read_lines words it)."""
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            h = hashlib.sha256()
            while block := f.read(READ_BLOCK_BYTES):
                h.update(block)
            return h.hexdigest()
    except OSError:
        return None


class Entry:
    """A cache entry's arrays: written into a temporary folder, mapped back read-only."""

    def __init__(self, folder: Path):
        self.folder = folder

    def __call__(self, name: str, array: np.ndarray) -> np.ndarray:
        np.save(self.folder / f"{name}.npy", array)
        return self.load(name)

    def empty(self, name: str, dtype, n: int) -> np.ndarray:
        return np.lib.format.open_memmap(self.folder / f"{name}.npy", mode="w+", dtype=dtype, shape=(n,))

    def done(self, name: str, array: np.memmap) -> np.ndarray:
        array.flush()
        del array
        return self.load(name)

    def load(self, name: str) -> np.ndarray:
        return np.load(self.folder / f"{name}.npy", mmap_mode="r")


def open_entry(folder: Path) -> Prepared:
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise ValueError("another format")
    entry = Entry(folder)
    starts = entry.load("starts") if meta["labels"] else None
    return Prepared(entry.load("tokens"), entry.load("offsets"), starts, meta["alphabet"], meta["labels"],
                    meta["fingerprint"], meta["longest"], folder)


def write_entry(path: Path, max_item_chars: int, final: Path) -> None:
    """Prepare `path` into the cache entry `final`, whole or not at all."""
    tmp = final.parent / f".{final.name}.{secrets.token_hex(6)}.tmp"
    tmp.mkdir()
    try:
        with open(tmp / "provisional.bin", "wb") as sink:
            tokenizer = tokenize(path, max_item_chars, sink)
        entry = Entry(tmp)
        provisional = np.memmap(tmp / "provisional.bin", dtype=PROVISIONAL, mode="r") if tokenizer.tokens else np.zeros(0, PROVISIONAL)
        prepared = tokenizer.finish(provisional, entry)
        del provisional
        (tmp / "provisional.bin").unlink()
        meta = {"format": FORMAT, "items": prepared.items, "alphabet": prepared.alphabet, "labels": prepared.labels,
                "fingerprint": prepared.fingerprint, "longest": prepared.longest, "dtype": str(prepared.tokens.dtype)}
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        try:
            os.rename(tmp, final)  # the whole entry appears at once
        except OSError:
            if not (final / "meta.json").exists():
                raise
            # another machine sharing the folder (where the lock may not reach) made it first: the same bytes
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load(path: Path, max_item_chars: int) -> Prepared:
    """The items of `path` as flat tokens: from the cache for a large file (prepared there the
    first time), else read now. Errors are data.read_lines' and data.split_labels'."""
    try:
        large = path.stat().st_size >= CACHE_FROM_BYTES
    except OSError:
        large = False
    digest = file_digest(path) if large else None
    if digest is None:
        return in_memory(path, max_item_chars)
    root = cache_root()
    final = root / f"tokens-{digest}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / f"tokens-{digest}.lock")):
            if not (final / "meta.json").exists():
                write_entry(path, max_item_chars, final)
        prepared = open_entry(final)
    except Unusual:
        return in_memory(path, max_item_chars)  # read whole: it reads the file or words what is wrong with it
    except (OSError, ValueError, KeyError):
        return in_memory(path, max_item_chars)  # no usable cache here: read the file as a small one
    if prepared.longest > max_item_chars:
        return in_memory(path, max_item_chars)  # refused with the line that is too long
    return prepared


def permutation(n: int, seed: int, entry: Path | None = None) -> np.ndarray:
    """The seeds' split order of n items, random.Random(seed).shuffle of range(n) (shuffle.py),
    as int32 (int64 past 2**31 items); cached beside the entry's tokens when there is one."""
    cached = None if entry is None else entry / f"split-{seed}.npy"
    if cached is not None:
        try:
            return np.load(cached, mmap_mode="r")
        except (OSError, ValueError):
            pass
    perm = shuffled(n, seed).astype(np.int32 if n < 2**31 else np.int64)
    if cached is not None:
        tmp = entry / f".split-{seed}.{secrets.token_hex(6)}.npy"
        try:
            np.save(tmp, perm)
            os.replace(tmp, cached)  # whole or not at all; two processes writing it write the same bytes
            return np.load(cached, mmap_mode="r")
        except OSError:
            tmp.unlink(missing_ok=True)
    return perm
