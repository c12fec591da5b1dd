"""A GPT-style decoder-only Transformer (Vaswani et al. 2017; Radford et al. 2019), after nanoGPT.

Token and position embeddings, then pre-LayerNorm blocks of causal self-attention and a GELU
MLP, each added to the residual stream. Sampling keeps a key/value cache, so a new character
attends to the cached past instead of re-running the prefix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import RowBatches, Tokens
from ..errors import MakemoreError
from .base import CharModel, ModelConfig, next_token_loss


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # query, key, value for all heads at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, cache=None, t=0, attn_mask=None):
        """x (B, T, C); `attn_mask` (B, 1, T, T), if given, says which keys each query may see
        (Transformer.forward_rows). With a cache (keys, values of shape (B, nh, max_len+1, hs)), x is the
        token at position t: its key and value are written there and it attends to 0..t."""
        B, T, C = x.shape
        q, k, v = (z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for z in self.c_attn(x).split(C, dim=2))
        if cache is None:
            # no dropout on the attention weights: on the CPU it forces the unfused kernel and costs
            # a third of a training step; the residual dropout below regularises enough
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=attn_mask is None)
        else:
            keys, values = cache
            keys[:, :, t : t + T] = k
            values[:, :, t : t + T] = v
            # the cache holds only the past and present, so no mask is needed
            y = F.scaled_dot_product_attention(q, keys[:, :, : t + T], values[:, :, : t + T])
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class FeedForward(nn.Module):
    """The block's position-wise MLP (nanoGPT's `MLP`): widen 4x, GELU, project back."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = FeedForward(config)

    def forward(self, x, cache=None, t=0, attn_mask=None):
        x = x + self.attn(self.ln_1(x), cache, t, attn_mask)
        return x + self.mlp(self.ln_2(x))


class Transformer(CharModel):

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c = config
        if c.n_embd % c.n_head:
            raise MakemoreError(f"--n-embd {c.n_embd} is not a multiple of --n-head {c.n_head}; the heads split the embedding evenly")
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.max_len + 1, c.n_embd)  # the boundary plus the longest item
        self.drop = nn.Dropout(c.dropout)
        self.h = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        # GPT-2 init: N(0, 0.02), and the projections into the residual stream scaled down by
        # sqrt(2 * n_layer) so the stream's variance does not grow with depth
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, std=0.02 / (2 * c.n_layer) ** 0.5)
            elif name.endswith("weight") and p.dim() == 2:
                nn.init.normal_(p, std=0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, real=None):
        return self.run(idx, None, 0)

    def run(self, idx, caches, t):
        T = idx.shape[1]
        if t + T > self.config.max_len + 1:
            raise ValueError(f"{t + T} tokens is more than this model's {self.config.max_len + 1} (its position table)")
        return self.decode(idx, torch.arange(t, t + T, device=idx.device), caches, t)

    def decode(self, idx, pos, caches=None, t=0, attn_mask=None):
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for i, block in enumerate(self.h):
            x = block(x, None if caches is None else caches[i], t, attn_mask)
        return self.lm_head(self.ln_f(x))

    def forward_rows(self, rows):
        """Logits for items packed several to a row (data.pack_rows): each token sees only the earlier
        tokens of its own item, at its position within that item, so it gets exactly the logits it
        would get alone in `forward`, with little padding computed."""
        W = rows.x.shape[1]
        causal = torch.ones(W, W, dtype=torch.bool, device=rows.x.device).tril()
        same_item = rows.segment[:, :, None] == rows.segment[:, None, :]
        return self.decode(rows.x, rows.pos, attn_mask=(same_item & causal)[:, None])

    # trained on several items per row, kept apart by the attention mask: the same loss as one
    # padded row per item, with far less padding computed
    def batches(self, train: Tokens, batch_size, generator, device):
        return RowBatches(train, batch_size, generator, device)

    def loss(self, batch):
        return next_token_loss(self.forward_rows(batch), batch.y)

    def max_tokens(self):
        return self.config.max_len + 1

    def start(self, batch_size):
        c = self.config
        shape = (batch_size, c.n_head, c.max_len + 1, c.n_embd // c.n_head)
        caches = [(torch.zeros(shape, device=self.device), torch.zeros(shape, device=self.device)) for _ in self.h]
        return caches, 0

    def step(self, idx, state):
        caches, t = state  # the caches are filled in place
        return self.run(idx[:, None], caches, t)[:, 0], (caches, t + 1)
