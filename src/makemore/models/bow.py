"""Causal bag of words (makemore.py's BoW): each position sees the average of the embeddings
so far, order forgotten except through the position embedding, then an MLP.

The average is a running sum, so a step costs the same at any length.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import CharModel, ModelConfig


class BoW(CharModel):

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.max_len + 1, c.n_embd)
        self.c_fc = nn.Linear(c.n_embd, c.n_hidden)
        self.c_proj = nn.Linear(c.n_hidden, c.n_embd)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size)
        with torch.no_grad():
            self.lm_head.weight.mul_(0.1)  # start near uniform: first loss ln(V)

    def embed(self, idx, pos):
        if pos[-1] > self.config.max_len:  # the position table covers the longest item + boundary
            raise ValueError(f"{int(pos[-1]) + 1} tokens is more than this model's {self.config.max_len + 1}")
        return self.wte(idx) + self.wpe(pos)

    def head(self, x, mean):
        x = x + mean
        x = x + self.c_proj(torch.tanh(self.c_fc(x)))
        return self.lm_head(x)

    def forward(self, idx, real=None):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.embed(idx, pos)
        return self.head(x, x.cumsum(1) / (pos[:, None] + 1))

    def max_tokens(self):
        return self.config.max_len + 1

    def start(self, batch_size):
        return torch.zeros(batch_size, self.config.n_embd, device=self.device), 0

    def step(self, idx, state):
        total, t = state
        x = self.embed(idx, torch.tensor([t], device=idx.device))
        total = total + x
        return self.head(x, total / (t + 1)), (total, t + 1)
