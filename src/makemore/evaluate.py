"""Exact mean negative log-likelihood over a whole split (the guide's metric)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .data import IGNORE, Packed


@dataclass
class EvalResult:
    split: str
    nll: float  # nats per predicted character, end boundary included
    bits_per_char: float
    perplexity: float
    chars: int
    items: int

    @classmethod
    def from_total(cls, split: str, total_nll: float, chars: int, items: int) -> "EvalResult":
        nll = total_nll / chars
        return cls(split, nll, nll / math.log(2), math.exp(nll), chars, items)

    def to_dict(self) -> dict:
        return asdict(self)


@torch.inference_mode()
def item_nll(model: torch.nn.Module, data: Packed, batch_items: int = 2048) -> torch.Tensor:
    """Summed NLL of each item (all its characters and its end boundary), in eval mode."""
    was_training = model.training
    model.eval()
    try:
        lengths = (data.y != IGNORE).sum(1)
        out = []
        for i in range(0, len(data), batch_items):
            T = int(lengths[i : i + batch_items].max())  # trim padding beyond the longest item here
            x, y = data.x[i : i + batch_items, :T], data.y[i : i + batch_items, :T]
            logits = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), ignore_index=IGNORE, reduction="none")
            out.append(loss.view(y.shape).sum(1).double())
        return torch.cat(out)
    finally:
        model.train(was_training)


def evaluate(model: torch.nn.Module, data: Packed, split: str = "val") -> EvalResult:
    return EvalResult.from_total(split, float(item_nll(model, data).sum()), data.chars, len(data))
