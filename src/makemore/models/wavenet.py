"""WaveNet (van den Oord et al. 2016) as in lecture 5: the hierarchical MLP.

The lecture fuses pairs of characters, then pairs of pairs, then pairs of those, over a window
of 8. Written as causal convolutions of width 2 with dilations 1, 2, 4, the same weights give
that window's prediction at every position of an item in one pass, so training runs on whole
items instead of one window per example, and sampling keeps a few rolling buffers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import BOUNDARY
from ..errors import MakemoreError
from .base import CharModel, ModelConfig


class MaskedBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the last dimension of (..., C), every marked (item, position) one sample.

    The lecture's bug was normalising (B, T, C) over B alone; here the statistics run over batch
    and time together, and padding after the end of an item is left out of them.
    """

    def forward(self, x, real=None):
        if self.training and real is not None:
            out = torch.zeros_like(x)  # padding only feeds padding (causality), so 0 is safe
            out[real] = super().forward(x[real])
            return out
        return super().forward(x.reshape(-1, x.shape[-1])).view_as(x)


class Layer(nn.Module):
    """FlattenConsecutive(2) + Linear + BatchNorm + tanh: one input `dilation` steps back and the current one."""

    def __init__(self, n_in: int, n_out: int, dilation: int, dropout: float = 0.0):
        super().__init__()
        self.dilation = dilation
        self.dropout = nn.Dropout(dropout)
        self.c_fc = nn.Linear(2 * n_in, n_out, bias=False)  # a bias is redundant before BatchNorm
        self.bn = MaskedBatchNorm(n_out)
        with torch.no_grad():
            self.c_fc.weight.normal_().div_((2 * n_in) ** 0.5)  # the lecture's Linear init

    def forward(self, older, newer, real=None):
        return self.dropout(torch.tanh(self.bn(self.c_fc(torch.cat([older, newer], dim=-1)), real)))


class WaveNet(CharModel):

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c = config
        n_layer = c.block_size.bit_length() - 1
        if c.block_size < 2 or c.block_size != 2**n_layer:
            raise MakemoreError(f"wavenet fuses pairs, so --block-size must be a power of two (2, 4, 8, 16, ...), not {c.block_size}")
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        dims = [c.n_embd] + [c.n_hidden] * n_layer
        self.layers = nn.ModuleList(Layer(dims[i], c.n_hidden, 2**i, c.dropout) for i in range(n_layer))
        self.lm_head = nn.Linear(c.n_hidden, c.vocab_size)
        with torch.no_grad():
            self.lm_head.weight.mul_(0.1)  # as in the lecture: a less confident first guess

    def forward(self, idx, real=None):
        pad = self.config.block_size - 1
        # the window before the first character is all boundary tokens, as in the seeds' build_dataset
        x = self.wte(F.pad(idx, (pad, 0), value=BOUNDARY))
        if real is not None:
            # positions before the item count in the statistics: real predictions read them
            real = F.pad(real, (pad, 0), value=True)
        for layer in self.layers:
            d = layer.dilation
            real = None if real is None else real[:, d:]
            x = layer(x[:, :-d], x[:, d:], real)  # length shrinks by d: T+7 -> T+6 -> T+4 -> T
        return self.lm_head(x)

    def start(self, batch_size):
        # Run the boundary padding through the stack once; each layer keeps its last `dilation`
        # inputs, the ones it pairs with the next `dilation` steps.
        pad = torch.full((batch_size, self.config.block_size - 1), BOUNDARY, dtype=torch.long, device=self.device)
        x = self.wte(pad)
        state = []
        for layer in self.layers:
            d = layer.dilation
            state.append(x[:, -d:])
            x = layer(x[:, :-d], x[:, d:])
        return state

    def step(self, idx, state):
        x = self.wte(idx)
        new = []
        for layer, buf in zip(self.layers, state):
            new.append(torch.cat([buf[:, 1:], x[:, None]], dim=1))
            x = layer(buf[:, 0], x)
        return self.lm_head(x), new
