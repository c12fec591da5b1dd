"""Bigram language models (lecture 1, seed 002): the next character depends only on the last one."""

from __future__ import annotations

import torch
from torch import nn

from ..data import IGNORE, Packed
from ..tokens import Tokens, item_chunks
from .base import CharModel, ModelConfig


class Bigram(CharModel):
    """A table of bigram counts with add-k smoothing, fitted by counting: P(b|a) = (N[a,b]+k) / sum_b'(N[a,b']+k)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        V = config.vocab_size
        self.register_buffer("counts", torch.zeros(V, V))

    @torch.no_grad()
    def fit(self, train: Packed | Tokens, val: Packed | Tokens | None = None) -> None:
        V = self.config.vocab_size
        counts = torch.zeros(V * V, dtype=torch.long, device=self.counts.device)
        for part in item_chunks(train):  # a chunk of items at a time: no table of the whole split
            keep = part.y != IGNORE
            counts += torch.bincount((part.x[keep] * V + part.y[keep]).to(counts.device), minlength=V * V)
        self.counts.copy_(counts.view(V, V).to(self.counts))

    def log_probs(self) -> torch.Tensor:
        smoothed = self.counts + self.config.smoothing
        return (smoothed / smoothed.sum(1, keepdim=True)).log()

    def forward(self, idx, real=None):
        return self.log_probs()[idx]

    def start(self, batch_size):
        return None

    def step(self, idx, state):
        return self.log_probs()[idx], None


class BigramNN(CharModel):
    """The same model as a one-layer neural net: one_hot(x) @ W gives the logits, so W is the
    table of log-counts, learned by gradient descent; an L2 penalty on W plays the role of
    smoothing (pulling W towards 0, i.e. towards uniform)."""


    def __init__(self, config: ModelConfig):
        super().__init__(config)
        V = config.vocab_size
        # small weights so training starts from (almost) uniform, loss ln(V)
        self.W = nn.Parameter(torch.randn(V, V) * 0.01)

    def forward(self, idx, real=None):
        return self.W[idx]  # row lookup == one_hot(idx) @ W, without building the one-hot

    def penalty(self):
        return self.config.l2 * (self.W**2).mean()

    def start(self, batch_size):
        return None

    def step(self, idx, state):
        return self.W[idx], None
