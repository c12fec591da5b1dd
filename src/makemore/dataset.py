"""A data file read (prepare.py), its vocabulary, and its seeded split as views of flat tokens."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from . import prepare
from .config import DEFAULT_ITEM_LENGTH, DEFAULT_SPLIT_SEED
from .data import (MIN_ITEMS, SHOWN_LINES, SPLIT_NAMES, ZWJ, Vocabulary, check_vocabulary, joined_lines, lines_named,
                   read_lines, resolve_data)
from .errors import DataError, too_long
from .tokens import Tokens, token_dtype

def bounds(n: int) -> dict[str, tuple[int, int]]:
    """The seeds' 80 % / 10 % / 10 % of n shuffled items: n1 = int(0.8 n), n2 = int(0.9 n)."""
    n1, n2 = int(0.8 * n), int(0.9 * n)
    return {"train": (0, n1), "val": (n1, n2), "test": (n2, n)}


@dataclass
class Dataset:
    """A data file's items as flat tokens (file order), encoded with `vocab`, and `order`: the
    seeds' split permutation (item i of the shuffled list is file item order[i]). The items as
    strings (`items`, `splits`, `labels`) are decoded only when asked for."""

    path: Path
    vocab: Vocabulary
    split_seed: int
    prepared: prepare.Prepared
    order: np.ndarray
    _packed: dict = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, spec: str | None, split_seed: int = DEFAULT_SPLIT_SEED, vocab: Vocabulary | None = None,
             max_item_chars: int = DEFAULT_ITEM_LENGTH) -> "Dataset":
        """The data of `spec`; with `vocab` (a run's), encoded with it, else with its own, checked
        against the limits of config.py."""
        path = resolve_data(spec)
        prepared = prepare.load(path, max_item_chars)
        if vocab is None:
            vocab = Vocabulary(prepared.alphabet, prepared.labels)
            check_vocabulary(vocab, path)
        else:
            prepared = encoded_for(prepared, vocab)
        if prepared.items < MIN_ITEMS:
            raise DataError(f"the data has {prepared.items} items; a train/val/test split needs at least {MIN_ITEMS}")
        return cls(path, vocab, split_seed, prepared, prepare.permutation(prepared.items, split_seed, prepared.entry))

    @classmethod
    def from_items(cls, path: Path, items: list[str], vocab: Vocabulary, split_seed: int = DEFAULT_SPLIT_SEED,
                   labels: list[str] | None = None) -> "Dataset":
        """Items given as strings, encoded with `vocab` (tests, and data made in memory)."""
        tokenizer = prepare.Tokenizer()
        tokenizer.add(items, labels)
        prepared = encoded_for(tokenizer.finish(np.concatenate(tokenizer.parts)), vocab)
        return cls(Path(path), vocab, split_seed, prepared, prepare.permutation(len(items), split_seed))

    # ---- the splits, as flat tokens -----------------------------------------------------------

    def rows(self, split: str) -> np.ndarray:
        a, b = bounds(self.prepared.items)[split]
        return self.order[a:b]

    def packed(self, split: str, length: int | None = None) -> Tokens:
        """The split as a view of the flat tokens; with `length` (a model's most input tokens),
        refused if an item of the split is longer."""
        if split not in self._packed:
            p = self.prepared
            self._packed[split] = Tokens(p.tokens, p.offsets, self.rows(split), p.starts)  # rows: a slice of the mapped order
        tokens = self._packed[split]
        if length is not None and len(tokens) and int(tokens.lengths_np.max()) > length:
            raise too_long(int(tokens.lengths_np.max()) - 1, length - 1)
        return tokens

    @property
    def n_items(self) -> int:
        return self.prepared.items

    def split_size(self, split: str) -> int:
        a, b = bounds(self.prepared.items)[split]
        return b - a

    @property
    def max_len(self) -> int:
        return self.prepared.longest

    @property
    def fingerprint(self) -> str:
        """Of the lines as read (data.fingerprint): with labels, "item<TAB>label"."""
        return self.prepared.fingerprint

    def label_counts(self, split: str = "train") -> dict[str, int]:
        """How many items of `split` carry each label (the labels' prior, from the training split)."""
        if self.prepared.starts is None:
            return {label: 0 for label in self.vocab.labels}
        ids = np.asarray(self.prepared.starts)[self.rows(split)].astype(np.int64) - self.vocab.first_label
        counts = np.bincount(ids, minlength=len(self.vocab.labels))
        return {label: int(c) for label, c in zip(self.vocab.labels, counts)}

    # ---- the items as strings, decoded on demand ----------------------------------------------

    def item(self, r: int) -> str:
        """File item r as text."""
        p = self.prepared
        return self.vocab.decode(p.tokens[p.offsets[r] : p.offsets[r + 1]].tolist())

    @property
    def items(self) -> list[str]:
        """Every item, in file order (decoded: for small data and tests)."""
        p, alphabet = self.prepared, np.array([BOUNDARY_CHAR] + self.vocab.alphabet, dtype=object)
        text = alphabet[np.asarray(p.tokens, dtype=np.int64)]
        return ["".join(text[a:b]) for a, b in zip(p.offsets[:-1].tolist(), p.offsets[1:].tolist())]

    @property
    def labels(self) -> list[str] | None:
        """Each item's label (file order), for labelled data."""
        if self.prepared.starts is None:
            return None
        return [self.vocab.labels[t - self.vocab.first_label] for t in np.asarray(self.prepared.starts).tolist()]

    @property
    def splits(self) -> dict[str, list[str]]:
        items = self.items
        return {s: [items[r] for r in self.rows(s).tolist()] for s in SPLIT_NAMES}

    @property
    def split_labels(self) -> dict[str, list[str]] | None:
        labels = self.labels
        if labels is None:
            return None
        return {s: [labels[r] for r in self.rows(s).tolist()] for s in SPLIT_NAMES}

    def note(self) -> str | None:
        """One line about the data worth knowing before training on it, or None: items that hold
        combining marks or joiners, which makemore models as characters of their own. Only data
        whose vocabulary has one is read again, for its line numbers."""
        if not any(ch == ZWJ or unicodedata.category(ch).startswith("M") for ch in self.vocab.alphabet):
            return None
        numbered = read_lines(self.path, max(DEFAULT_ITEM_LENGTH, self.max_len))
        numbers = [n for n, _ in numbered]
        items = self.items
        lines, marks = joined_lines(items, numbers)
        if not lines:
            return None
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in marks[:SHOWN_LINES]) + (", ..." if len(marks) > SHOWN_LINES else "")
        nfc = [unicodedata.normalize("NFC", item) for item in items]
        advice = ("samples may hold a mark or joiner where no real text has one" if joined_lines(nfc, numbers)[0] else
                  "samples may split an accent from its letter; every one of them composes under Unicode NFC, so "
                  "normalising the file to NFC keeps them whole")
        return (f"{self.path}: combining marks or joiners ({shown}) in {len(lines):,} of {len(items):,} items "
                f"({lines_named(lines)}); makemore models each code point as a character, so {advice}")


BOUNDARY_CHAR = ""  # token 0 decodes to nothing


def encoded_for(prepared: prepare.Prepared, vocab: Vocabulary) -> prepare.Prepared:
    """The prepared items in the token numbers of `vocab` (a run's): the same arrays when its
    vocabulary is the data's own (the usual case, mapped files untouched), else renumbered."""
    if prepared.alphabet == vocab.alphabet and prepared.labels == vocab.labels:
        return prepared
    missing = [ch for ch in prepared.alphabet if ch not in vocab.stoi]
    if missing:
        bad = np.isin(np.asarray(prepared.tokens), [prepared.alphabet.index(ch) + 1 for ch in missing])
        r = int(np.searchsorted(prepared.offsets, np.flatnonzero(bad)[0], side="right")) - 1
        own = Vocabulary(prepared.alphabet, prepared.labels)
        vocab.encode(own.decode(prepared.tokens[prepared.offsets[r] : prepared.offsets[r + 1]].tolist()))  # raises its DataError
    dtype = token_dtype(len(vocab))
    renumber = np.array([0] + [vocab.stoi[ch] for ch in prepared.alphabet], dtype=dtype)
    starts = None
    if prepared.starts is not None:
        first = len(prepared.alphabet) + 1
        for label in prepared.labels:
            vocab.label_token(label)  # an unknown label: its DataError
        relabel = np.zeros(first + len(prepared.labels), dtype=dtype)
        relabel[first:] = [vocab.label_token(label) for label in prepared.labels]
        starts = relabel[np.asarray(prepared.starts)]
    return prepare.Prepared(renumber[np.asarray(prepared.tokens)], prepared.offsets, starts, vocab.alphabet, vocab.labels,
                            prepared.fingerprint, prepared.longest, prepared.entry)
