"""A compact set of texts, for `--novel` (the training items) and `--exclude` (a file's lines).

A Python set of ten million strings takes about a gigabyte; this takes 16 bytes a text besides
the texts themselves, which stay where they are (a data file's flat tokens, mapped) or are kept
as one array of code points. Each text's 64-bit hash is computed for all texts at once (numpy,
a chunk of texts at a time); the hashes are sorted, and a lookup is a binary search followed by
an exact comparison with every text of that hash, so a collision never makes an answer wrong.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Set
from typing import Callable, Iterator

import numpy as np

CHUNK = 1 << 20  # texts hashed at once
SMALL = 1 << 16  # fewer texts than this stay a frozenset: as fast, and as small as it matters
MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: a polynomial hash over code points modulo 2**64


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every bit of the hash depends on every bit of its input."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _powers(n: int) -> np.ndarray:
    """MULTIPLIER**k modulo 2**64 for k < n, by doubling."""
    out = np.ones(1, dtype=np.uint64)
    while len(out) < n:
        out = np.concatenate([out, out * np.uint64(pow(int(MULTIPLIER), len(out), 1 << 64))])
    return out[:n]


def hashes(points: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """uint64 hash of each text, text r being the code points points[offsets[r]:offsets[r + 1]]
    (every text non-empty): sum of (point + 1) * MULTIPLIER**position, mixed with its length."""
    out = np.empty(len(offsets) - 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(0, len(out), CHUNK):
            begin, end = offsets[i : i + CHUNK + 1][:-1], offsets[i + 1 : i + CHUNK + 1]
            lengths = (end - begin).astype(np.int64)
            flat = np.asarray(points[begin[0] : end[-1]]).astype(np.uint64) + np.uint64(1)
            pos = np.arange(len(flat)) - np.repeat(begin - begin[0], lengths)
            h = np.add.reduceat(flat * _powers(int(lengths.max()))[pos], begin - begin[0])
            out[i : i + len(lengths)] = _mix(h ^ (lengths.astype(np.uint64) * np.uint64(0xD6E8FEB86659FD93)))
    return out


def hash_text(text: str) -> np.uint64:
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    return hashes(points, np.array([0, len(points)]))[0]


class Seen(Set):
    """Texts by their sorted hashes; `text(k)` gives text k (the k-th in the order they were hashed)."""

    def __init__(self, keys: np.ndarray, text: Callable[[int], str], order: np.ndarray | None = None):
        """`keys`: each text's hash; or, with `order`, the hashes sorted and the texts they are of."""
        self.order = np.argsort(keys, kind="stable") if order is None else order
        self.keys, self.text = (keys[self.order] if order is None else keys), text

    def __contains__(self, item) -> bool:
        if not isinstance(item, str) or not item:
            return False
        h = hash_text(item)
        lo, hi = np.searchsorted(self.keys, h, side="left"), np.searchsorted(self.keys, h, side="right")
        return any(self.text(int(k)) == item for k in self.order[lo:hi])  # the exact check on a hit

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[str]:
        return (self.text(k) for k in range(len(self.keys)))

    @classmethod
    def _from_iterable(cls, it):  # what Set's operators (a set & a Seen) build: a plain frozenset
        return frozenset(it)

    def __or__(self, other):
        return Union((self, other))

    __ror__ = __or__


class Union:
    """Texts in any of several sets, without merging them."""

    def __init__(self, parts):
        self.parts = tuple(p for part in parts for p in (part.parts if isinstance(part, Union) else (part,)) if p)

    def __contains__(self, item) -> bool:
        return any(item in part for part in self.parts)

    def __bool__(self) -> bool:
        return bool(self.parts)

    def __or__(self, other):
        return Union((self, other))

    __ror__ = __or__


def of_dataset(dataset) -> Seen | frozenset:
    """Every item of a Dataset (all splits), hashed from its flat tokens, checked against them. The
    hashes of a cached file are kept beside its tokens (they are of its characters, not its token
    numbers), so a second `sample --novel` maps them."""
    p = dataset.prepared
    if p.items < SMALL:
        return frozenset(dataset.items)
    if p.entry is not None:
        try:
            return Seen(np.load(p.entry / "seen-keys.npy", mmap_mode="r"), dataset.item,
                        np.load(p.entry / "seen-order.npy", mmap_mode="r"))
        except (OSError, ValueError):
            pass
    points = np.array([0] + [ord(ch) for ch in dataset.vocab.alphabet], dtype=np.uint32)

    class Points:  # the code points of the tokens, a slice at a time (never the whole file as uint32)
        def __getitem__(self, s):
            return points[np.asarray(p.tokens[s])]

    found = Seen(hashes(Points(), np.asarray(p.offsets)), dataset.item)
    if p.entry is not None:
        for name, array in (("seen-order", found.order), ("seen-keys", found.keys)):  # keys last: read only with their order
            tmp = p.entry / f".{name}.{secrets.token_hex(6)}.npy"
            try:
                np.save(tmp, array)
                os.replace(tmp, p.entry / f"{name}.npy")
            except OSError:
                tmp.unlink(missing_ok=True)
    return found


def of_lines(lines: list[str]) -> Seen | frozenset:
    """Non-empty texts (an exclude file's lines), kept as one array of code points."""
    if len(lines) < SMALL:
        return frozenset(lines)
    lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    points = np.frombuffer("".join(lines).encode("utf-32-le", "surrogatepass"), dtype="<u4")
    keys = hashes(points, offsets)

    def text(k: int) -> str:
        return points[offsets[k] : offsets[k + 1]].tobytes().decode("utf-32-le", "surrogatepass")

    return Seen(keys, text)
