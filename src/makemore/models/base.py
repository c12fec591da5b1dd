"""The one interface every model implements.

A model maps token ids (B, T) to next-token logits (B, T, V), causally: the logits at
position t depend only on tokens 0..t. Generation and scoring go one token at a time through
`start` and `step`, which carry whatever state the model needs (a rolling window, a hidden
state, a key/value cache) so that each new character costs the same whatever came before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn


@dataclass
class ModelConfig:
    """Every hyperparameter a model may read; each model names the ones it uses in `options`."""

    vocab_size: int = 27
    max_len: int = 32  # longest item in the data: bounds sequence length (position tables, sampling)
    block_size: int = 3  # characters of context for the fixed-window models
    n_embd: int = 10
    n_hidden: int = 200
    n_layer: int = 2
    n_head: int = 4
    dropout: float = 0.0
    batchnorm: bool = False
    kaiming: bool = True  # scale hidden weights by gain / sqrt(fan_in), gain 5/3 for tanh
    output_scale: float = 0.01  # shrink the output layer at init so the first loss is ln(V)
    smoothing: float = 1.0  # add-k smoothing of the bigram counts
    l2: float = 0.0  # weight of the L2 penalty on the bigram-nn table

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)


class CharModel(nn.Module):
    """Base class: subclasses define `forward`; `start`/`step` default to re-running the prefix."""

    # config fields this model reads (besides vocab_size and max_len); the CLI rejects others
    options: tuple[str, ...] = ()
    # "items": trained on batches of whole items, one padded row each; "windows": on batches of
    # (context, next char); "rows": on whole items two to a row (data.pack_rows), through
    # forward_rows (a model that can keep the items of one row apart)
    batch_unit = "items"
    # models fitted in closed form (no gradient steps) define fit(packed_train)
    closed_form = False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config

    def forward(self, idx: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) token ids -> (B, T, V) logits. `mask` (B, T) marks real (non-padding)
        positions, for layers whose training statistics must not see padding (BatchNorm)."""
        raise NotImplementedError

    def penalty(self) -> torch.Tensor | float:
        """Regularisation added to the training loss (not to reported NLL)."""
        return 0.0

    def max_tokens(self) -> int | None:
        """Longest input (the boundary plus characters) the model accepts; None for any length."""
        return None

    def start(self, batch_size: int) -> object:
        """State before the first token (the boundary) is fed."""
        return torch.empty(batch_size, 0, dtype=torch.long, device=self.device)

    def step(self, idx: torch.Tensor, state: object) -> tuple[torch.Tensor, object]:
        """Feed one token per row, (B,), and get the next-token logits (B, V) and the new state."""
        prefix = torch.cat([state, idx[:, None]], dim=1)
        return self(prefix)[:, -1], prefix

    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
