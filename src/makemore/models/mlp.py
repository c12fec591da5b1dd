"""The MLP of Bengio et al. 2003 (lectures 2-4, seeds 000, 001, 003, 004).

Embed the previous `block_size` characters (boundary-padded at the start of an item),
concatenate, one tanh hidden layer, output layer. Options are the seeds' fixes: Kaiming
initialisation with the tanh gain, a scaled-down output layer, and BatchNorm before tanh.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import BOUNDARY, Tokens, WindowBatches
from .base import CharModel, ModelConfig, next_token_loss

TANH_GAIN = 5 / 3


class MLP(CharModel):

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c = config
        fan_in = c.block_size * c.n_embd
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)  # C in the lectures
        self.c_fc = nn.Linear(fan_in, c.n_hidden)  # W1, b1
        self.bn = nn.BatchNorm1d(c.n_hidden, momentum=0.001) if c.batchnorm else None
        self.c_proj = nn.Linear(c.n_hidden, c.vocab_size)  # W2, b2
        with torch.no_grad():  # the seeds' initialisation, all from N(0, 1)
            nn.init.normal_(self.wte.weight)
            gain = TANH_GAIN / fan_in**0.5 if c.kaiming else 1.0
            self.c_fc.weight.normal_().mul_(gain)
            self.c_fc.bias.normal_().mul_(0.01 if c.kaiming else 1.0)
            self.c_proj.weight.normal_().mul_(c.output_scale)
            self.c_proj.bias.zero_()

    def forward_windows(self, ctx: torch.Tensor) -> torch.Tensor:
        """(N, block_size) contexts -> (N, V) logits for the character after each."""
        emb = self.wte(ctx).flatten(1)  # (N, block_size * n_embd)
        h = self.c_fc(emb)
        if self.bn is not None:
            h = self.bn(h)
        return self.c_proj(torch.tanh(h))

    def forward(self, idx, real=None):
        B, T = idx.shape
        k = self.config.block_size
        ctx = F.pad(idx, (k - 1, 0), value=BOUNDARY).unfold(1, k, 1)  # (B, T, k): tokens t-k+1..t
        return self.forward_windows(ctx.reshape(B * T, k)).view(B, T, -1)

    # trained as in the seeds: on random (context, next character) windows, not whole items
    def batches(self, train: Tokens, batch_size, generator, device):
        return WindowBatches(train, self.config.block_size, batch_size, generator, device)

    def loss(self, batch):
        return next_token_loss(self.forward_windows(batch.x), batch.y)

    def start(self, batch_size):
        return torch.full((batch_size, self.config.block_size), BOUNDARY, dtype=torch.long, device=self.device)

    def step(self, idx, state):
        window = torch.cat([state[:, 1:], idx[:, None]], dim=1)  # roll the window by one
        return self.forward_windows(window), window
