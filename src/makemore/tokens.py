"""A split as one flat token array, and the training batches cut from it one at a time.

The items of a data file are stored end to end in one array of the smallest integer type the
vocabulary fits (`token_dtype`), with each item's offset into it (dataset.py, prepare.py). A
split is a view: the file's items it holds, in the split's order. A batch of items is gathered
from the array and padded to the longest item *in the batch*: the boundary in the inputs and -1
(ignored by the loss) in the targets, exactly as the rows of a table packed once (data.pack)
would be trimmed to it, so the same items give the same numbers either way. No per-item Python
runs in a batch; the arrays may be memory-mapped, so a split costs its tokens' bytes, not a
padded table of int64.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .data import BOUNDARY, IGNORE, Packed, pack_rows


def token_dtype(vocab_size: int) -> np.dtype:
    """uint8 for up to 256 tokens, else uint16, else int32."""
    return np.dtype(np.uint8 if vocab_size <= 1 << 8 else np.uint16 if vocab_size <= 1 << 16 else np.int32)


class Tokens:
    """The items `rows` (indices into the file's items; None: all of them, in order) of a file's
    items stored flat: item r is tokens[offsets[r]:offsets[r + 1]], read after its start token
    starts[r] (a label's; None: the boundary for every item). Indexed as a split: item i of this
    view is file item rows[i]. Works like Packed wherever a split is read: `lengths`, `take`,
    `chars`, `len`, `to`."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, rows: np.ndarray | None = None,
                 starts: np.ndarray | None = None, device=None):
        self.tokens, self.offsets, self.rows, self.starts = tokens, offsets, rows, starts
        self.device = torch.device(device or "cpu")
        chars = offsets[1:] - offsets[:-1] if rows is None else offsets[rows + 1] - offsets[rows]
        self.lengths_np = chars.astype(np.int64) + 1  # predicted characters: the item's and its end boundary
        self._ends: np.ndarray | None = None

    @classmethod
    def from_packed(cls, packed: Packed) -> "Tokens":
        """The items of a padded table, stored flat (for code handed a Packed, such as the tests')."""
        x, y = packed.x.cpu(), packed.y.cpu()
        n = (y != IGNORE).sum(1) - 1
        inside = torch.arange(y.shape[1]) < n[:, None]
        offsets = np.concatenate([[0], np.cumsum(n.numpy())]).astype(np.int64)
        return cls(y[inside].numpy(), offsets, None, x[:, 0].numpy(), packed.x.device)

    def __len__(self) -> int:
        return len(self.lengths_np)

    @property
    def lengths(self) -> torch.Tensor:
        """Predicted characters of each item (its characters and its end boundary), on the CPU."""
        return torch.from_numpy(self.lengths_np)

    @property
    def chars(self) -> int:
        """Predicted characters (end boundaries included)."""
        return int(self.lengths_np.sum())

    def to(self, device) -> "Tokens":
        """The same view, whose batches go to `device` (the arrays stay where they are)."""
        moved = Tokens.__new__(Tokens)
        moved.__dict__.update(self.__dict__)
        moved.device = torch.device(device)
        return moved

    def subset(self, idx: np.ndarray) -> "Tokens":
        """The items `idx` of this view, in that order, as a view of their own."""
        return Tokens(self.tokens, self.offsets, self.file_rows(np.asarray(idx, dtype=np.int64)), self.starts, self.device)

    def file_rows(self, idx: np.ndarray) -> np.ndarray:
        return idx if self.rows is None else self.rows[idx]

    def take(self, idx: torch.Tensor) -> Packed:
        """The items `idx` (of this view) as inputs and targets padded to the longest of them."""
        r = self.file_rows(np.asarray(idx.cpu(), dtype=np.int64))
        begin = self.offsets[r]
        n = self.offsets[r + 1] - begin
        col = np.arange(int(n.max()) + 1)
        inside = col < n[:, None]  # (B, T): the columns of an item's characters in the targets
        chars = self.tokens[np.where(inside, begin[:, None] + col, 0)].astype(np.int64)
        y = np.where(inside, chars, np.where(col == n[:, None], BOUNDARY, IGNORE))
        x = np.empty_like(y)
        x[:, 0] = BOUNDARY if self.starts is None else self.starts[r]
        x[:, 1:] = np.where(inside[:, :-1], chars[:, :-1], BOUNDARY)  # the characters, one column on
        return Packed(torch.from_numpy(x).to(self.device), torch.from_numpy(y).to(self.device))

    def windows(self, idx: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted characters `idx` (counted over the items in order, each item's characters and
        its end boundary) as (the `block_size` tokens before it, it), as data.windows lays them out:
        the context before an item's first character is its start token after boundary tokens."""
        if self._ends is None:
            self._ends = np.cumsum(self.lengths_np)  # where each item's predicted characters end
        j = np.asarray(idx.cpu(), dtype=np.int64)
        item = np.searchsorted(self._ends, j, side="right")
        t = j - (self._ends[item] - self.lengths_np[item])  # the position within its item's inputs
        r = self.file_rows(item)
        begin = self.offsets[r]
        n = self.offsets[r + 1] - begin
        p = t[:, None] + np.arange(1 - block_size, 1)  # the context's input positions; input p >= 1 is character p - 1
        chars = self.tokens[begin[:, None] + np.maximum(p, 1) - 1].astype(np.int64)
        start = BOUNDARY if self.starts is None else self.starts[r][:, None].astype(np.int64)
        ctx = np.where(p >= 1, chars, np.where(p == 0, start, BOUNDARY))
        y = np.where(t < n, self.tokens[begin + np.minimum(t, n - 1)].astype(np.int64), BOUNDARY)
        return torch.from_numpy(ctx).to(self.device), torch.from_numpy(y).to(self.device)

    @property
    def x(self) -> torch.Tensor:
        """Every item's inputs as one padded table (small data and tests; batches never build it)."""
        return self.take(torch.arange(len(self))).x

    @property
    def y(self) -> torch.Tensor:
        return self.take(torch.arange(len(self))).y


def as_tokens(data) -> Tokens:
    return data if isinstance(data, Tokens) else Tokens.from_packed(data)


def item_chunks(data, items: int = 1 << 16):
    """The items of `data` (Tokens or Packed) in order, as Packed batches of `items` items."""
    for i in range(0, len(data), items):
        yield data.take(torch.arange(i, min(i + items, len(data)), device=data.lengths.device))


# ---- training batches: drawn with a generator, gathered one at a time, no per-item Python ---------


class Batch(NamedTuple):
    x: torch.Tensor  # inputs: token ids, or contexts of token ids
    y: torch.Tensor  # targets, IGNORE at padding


class Batches:
    """Random training batches: each call draws `batch_size` indices with `generator` (`draw`) and
    gathers them (`take`, by the subclass) from the split's flat tokens."""

    def __init__(self, train, batch_size: int, generator: torch.Generator, device):
        self.data = as_tokens(train).to(device)
        self.batch_size, self.generator, self.device = batch_size, generator, device

    def __len__(self) -> int:
        return len(self.data)

    def __call__(self):
        return self.take(self.draw())

    def draw(self) -> torch.Tensor:
        """The indices of the next random batch (a distributed run takes each rank's share of them)."""
        return torch.randint(0, len(self), (self.batch_size,), generator=self.generator)

    def take(self, idx: torch.Tensor):
        raise NotImplementedError


class ItemBatches(Batches):
    """Random whole items, one row each, padded to the longest item of the batch."""

    def take(self, idx: torch.Tensor) -> Batch:
        packed = self.data.take(idx)
        return Batch(packed.x, packed.y)


class RowBatches(Batches):
    """The same random items as ItemBatches, laid several to a row by pack_rows: less padding."""

    def __init__(self, train, batch_size: int, generator: torch.Generator, device):
        super().__init__(train, batch_size, generator, "cpu")  # rows are built on the CPU, then moved
        self.device = device

    def take(self, idx: torch.Tensor):
        return pack_rows(self.data.take(idx)).to(self.device)


class WindowBatches(Batches):
    """Random (context of `block_size` tokens, next character) pairs, as the seeds train the MLP:
    the batch size counts characters, not items."""

    def __init__(self, train, block_size: int, batch_size: int, generator: torch.Generator, device):
        super().__init__(train, batch_size, generator, device)
        self.block_size, self.chars = block_size, self.data.chars

    def __len__(self) -> int:
        return self.chars

    def take(self, idx: torch.Tensor) -> Batch:
        return Batch(*self.data.windows(idx, self.block_size))
