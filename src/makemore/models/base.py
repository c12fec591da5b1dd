"""The one interface every model implements.

A model maps token ids (B, T) to next-token logits (B, T, V), causally: the logits at
position t depend only on tokens 0..t. Generation and scoring go one token at a time through
`start` and `step`, which carry whatever state the model needs (a rolling window, a hidden
state, a key/value cache) so that each new character costs the same whatever came before.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..data import IGNORE, Batch, ItemBatches, Tokens


class CharModel(nn.Module):
    """Base class: subclasses define `forward`; `start`/`step` default to re-running the prefix."""

    # models fitted in closed form (no gradient steps) define fit(train, val=None): fitted to the train
    # split, with val for what the data cannot say by itself (the ngram's order); it returns what it
    # chose on val and the figures it chose by (config.json's "choice"), or None. The registry
    # declares which models these are (ModelSpec.closed_form), for what reads it without PyTorch
    closed_form = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.closed_form = callable(getattr(cls, "fit", None))

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.dropping = True  # whether training drops (set_dropout); evaluation never does

    def set_dropout(self, on: bool) -> None:
        """Train with or without dropout (every nn.Dropout, and whatever else a model drops: the
        recurrent models' dropout between layers and weight drop), the rest of training mode
        (BatchNorm's batch statistics) unchanged: --dropout-from trains its first steps without."""
        self.dropping = on
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.Dropout):
                m.training = mode and self.dropping
        return self

    def forward(self, idx: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) token ids -> (B, T, V) logits. `real` (B, T) marks the real (non-padding)
        positions, for layers whose training statistics must not see padding (BatchNorm)."""
        raise NotImplementedError

    # Training: the trainer asks the model for its batches and for the loss of one. By default a
    # batch is whole items, one padded row each; a model that learns better or faster from
    # another layout (windows, several items to a row) overrides both, in its own file.

    def batches(self, train: Tokens, batch_size: int, generator: torch.Generator, device) -> Callable[[], Batch]:
        """A function returning a random training batch each call, drawn with `generator`; its
        `draw()` gives the next batch's row indices and `take(idx)` the batch of those rows, for a
        distributed run, where each process trains on its share of the rows (data.ItemBatches)."""
        return ItemBatches(train, batch_size, generator, device)

    def loss(self, batch) -> torch.Tensor:
        """Mean NLL per predicted character of a batch from `batches`."""
        return next_token_loss(self(batch.x, real=batch.y != IGNORE), batch.y)

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

    def shape_notes(self) -> dict[str, str]:
        """What a weights file's tensor of another shape most likely means, by tensor name (for the
        store's check of a weights file against this model): the tensors sized by the vocabulary."""
        v = self.config.vocab_size
        return {k: "a vocabulary of another size" for k, t in self.state_dict().items() if v in t.shape}

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (..., V) logits against (...) targets, padding (IGNORE) left out."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)
