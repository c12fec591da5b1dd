"""Exact mean negative log-likelihood over a whole split (the guide's metric)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import deadline
from .data import IGNORE, Packed
from .tokens import Tokens, as_tokens


@dataclass
class EvalResult:
    split: str
    nll: float  # nats per predicted character, end boundary included
    bits_per_char: float
    perplexity: float
    chars: int
    items: int
    by_label: dict[str, "EvalResult"] | None = None  # labelled data: the same over each label's items
    sample: dict | None = None  # over a seeded sample of the split (sample_split), not all of it: which

    @classmethod
    def from_total(cls, split: str, total_nll: float, chars: int, items: int) -> "EvalResult":
        return cls.of_nll(split, total_nll / chars, chars, items)

    @classmethod
    def of_nll(cls, split: str, nll: float, chars: int, items: int) -> "EvalResult":
        # a diverged model's NLL can be huge: its perplexity is then inf, not an OverflowError
        return cls(split, nll, nll / math.log(2), math.exp(nll) if not nll >= 700 else math.inf, chars, items)

    def to_dict(self) -> dict:
        """As JSON; `by_label` only for labelled data."""
        out = {k: v for k, v in asdict(self).items() if k not in ("by_label", "sample")}
        if self.sample is not None:
            out["sample"] = self.sample
        if self.by_label is not None:
            out["by_label"] = {label: part.to_dict() for label, part in self.by_label.items()}
        return out


# the most logits one evaluation batch holds (64 MB of float32): a large vocabulary or long items
# make batches of fewer items; names (2048 items of 16 positions over 27 tokens) never reach it
EVAL_LOGITS = 1 << 24
# ...and the most positions (items times the batch's longest): a model's hidden layers are wider
# than its logits (the MLP's 200 units beside 27 tokens), so one long item among short ones would
# otherwise pad hundreds of them to its length (benchmarks/data_scale.py: +100 % memory for one
# item of 900 characters in 300K). Names (2048 x 16 = 32,768) never reach it either.
EVAL_POSITIONS = 1 << 16


# A split of more predicted characters than this is evaluated, between checkpoints, over a seeded
# sample of its items of about this many (sample_split): an exact pass over 21M characters of a
# 3M-line list took minutes per checkpoint, and a time budget could not hold. The lectures' names
# (196,113 characters of train split) never reach it, so their figures are every item's.
SAMPLE_CHARS = 1_000_000
SAMPLE_SEED = 0  # the same items at every checkpoint, and in every run of the same split


def sample_split(data: Packed | Tokens, most: int | None = None) -> tuple[Packed | Tokens, dict | None]:
    """`data` itself when it holds at most `most` predicted characters (SAMPLE_CHARS), else a fixed
    seeded sample of its items, in their order, of about that many, with what it is: its items and
    characters, and those of the whole split."""
    most = SAMPLE_CHARS if most is None else most
    chars = data.chars
    if chars <= most:
        return data, None
    tokens = as_tokens(data)
    lengths = tokens.lengths_np
    order = torch.randperm(len(tokens), generator=torch.Generator().manual_seed(SAMPLE_SEED)).numpy()
    head = order[:most]  # every item holds a predicted character at least: `most` items reach `most`
    count = int(np.searchsorted(np.cumsum(lengths[head]), most)) + 1  # the first items of the order reaching `most`
    rows = np.sort(head[:count])
    sample = tokens.subset(rows)
    return sample, {"items": len(sample), "chars": sample.chars, "of_items": len(tokens), "of_chars": chars,
                    "seed": SAMPLE_SEED, "rows": rows}


def sample_note(sample: dict) -> dict:
    """A sample's description as metrics.jsonl and summary.json record it (its rows aside)."""
    return {k: v for k, v in sample.items() if k != "rows"}


@torch.inference_mode()
def item_nll(model: torch.nn.Module, data: Packed | Tokens, batch_items: int = 2048) -> torch.Tensor:
    """Summed NLL of each item (all its characters and its end boundary), in eval mode, in the
    order of `data`. Items go through the model shortest first, a chunk at a time, each chunk
    gathered (`take`) and padded to its own longest item: a split is never padded whole, and a
    random batch of 2048 names would be mostly padding beyond the typical length. A batch holds
    at most EVAL_LOGITS logits and EVAL_POSITIONS positions (one item, at the least)."""
    was_training = model.training
    model.eval()
    try:
        lengths = data.lengths
        order = torch.argsort(lengths, stable=True)
        out = torch.empty(len(data), dtype=torch.float64, device=lengths.device)
        counts = torch.arange(1, batch_items + 1, device=lengths.device)
        sizes = counts * model.config.vocab_size
        i = 0
        while i < len(data):
            deadline.check()
            # the most items from i on whose batch, k items as long as the k-th, holds few enough logits and positions
            ahead = lengths[order[i : i + batch_items]]
            fits = (sizes[: len(ahead)] * ahead <= EVAL_LOGITS) & (counts[: len(ahead)] * ahead <= EVAL_POSITIONS)
            rows = order[i : i + max(1, int(fits.sum()))]
            batch = data.take(rows)
            x, y = batch.x, batch.y
            logits = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), ignore_index=IGNORE, reduction="none")
            out[rows.to(out.device)] = loss.view(y.shape).sum(1).double().to(out.device)
            i += len(rows)
        return out
    finally:
        model.train(was_training)


def evaluate(model: torch.nn.Module, data: Packed | Tokens, split: str = "val", labels: list[str] | None = None) -> EvalResult:
    """Mean NLL per predicted character over all of `data`; with `labels` (each item's), also over
    each label's items (for a labelled model, each item's NLL given its label)."""
    nll = item_nll(model, data)
    result = EvalResult.from_total(split, float(nll.sum()), data.chars, len(data))
    if labels is not None:
        chars = data.lengths.to(nll.device)
        result.by_label = {}
        for label in sorted(set(labels)):
            mine = torch.tensor([item_label == label for item_label in labels], device=nll.device)
            result.by_label[label] = EvalResult.from_total(split, float(nll[mine].sum()), int(chars[mine].sum()), int(mine.sum()))
    return result
