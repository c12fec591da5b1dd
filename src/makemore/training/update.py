"""One optimiser step's parts: the learning rate of the step, the optimiser, the loss a batch
trains on (under DistributedDataParallel, torch.compile and autocast when asked) and the weight
average kept beside the model."""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from ..config import TrainConfig
from ..distributed import Ranks
from ..models import CharModel

AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}  # --dtype: float32 runs without autocast


def learning_rate(tc: TrainConfig, step: int, progress: float) -> float:
    """`progress` in [0, 1]: the larger of steps done and time spent, as fractions of the limits."""
    if step < tc.warmup_steps:
        return tc.lr * (step + 1) / tc.warmup_steps
    if tc.lr_schedule == "step":
        return tc.lr if progress < 0.5 else tc.lr / 10
    if tc.lr_schedule == "cosine":
        return tc.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))  # decay to lr/10
    return tc.lr


def make_optimizer(model: CharModel, tc: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if tc.optimizer == "sgd":
        return torch.optim.SGD(params, lr=tc.lr)
    # decay matrices only: biases, norms and 1-d gains are not regularised (as in nanoGPT)
    decay = [p for p in params if p.dim() >= 2]
    other = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": tc.weight_decay}, {"params": other, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    try:  # one fused kernel for the whole update (CPU, CUDA, MPS in recent torch): a fifth of a small model's step
        return torch.optim.AdamW(groups, lr=tc.lr, betas=(0.9, 0.99), fused=True)
    except (RuntimeError, ValueError):  # an older torch, or a device without the fused kernel
        return torch.optim.AdamW(groups, lr=tc.lr, betas=(0.9, 0.99))


class WeightAverage:
    """An exponential moving average of the weights and buffers (Polyak averaging), kept beside
    the model. Evaluating the average instead of the last weights takes out the noise of the
    last steps (benchmarks/results/models.md compares lstm with it and lstm-no-ema without).
    The decay ramps up as (1 + n) / (10 + n) to `decay`, so short runs are not dominated by the
    first weights."""

    def __init__(self, model: CharModel, decay: float):
        self.decay, self.updates = decay, 0
        self.averaged = AveragedModel(model, multi_avg_fn=self.blend, use_buffers=True)

    @property
    def model(self) -> CharModel:
        return self.averaged.module

    @torch.no_grad()
    def blend(self, averaged: list[torch.Tensor], current: list[torch.Tensor], _n) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for a, c in zip(averaged, current):
            if a.is_floating_point():
                a.lerp_(c, 1 - decay)
            else:  # counters such as BatchNorm's num_batches_tracked
                a.copy_(c)

    def update(self, model: CharModel) -> None:
        self.averaged.update_parameters(model)
        self.updates += 1


class StepLoss(nn.Module):
    """A batch's training loss as a module's forward, for DistributedDataParallel (which averages
    the gradients of what runs through its wrapper's forward) and torch.compile to wrap."""

    def __init__(self, model: CharModel):
        super().__init__()
        self.model = model

    def forward(self, batch) -> torch.Tensor:
        return self.model.loss(batch)



def loss_function(model: CharModel, tc: TrainConfig, ranks: Ranks):
    """What gives a batch's training loss: the model's own `loss`; with several ranks, under
    DistributedDataParallel; with --compile, compiled (evaluation runs the model uncompiled)."""
    if not ranks.distributed and not tc.compile:
        return model.loss
    step_loss = ranks.wrap(StepLoss(model))
    return torch.compile(step_loss) if tc.compile else step_loss


def autocast(tc: TrainConfig, device: torch.device):
    """--dtype bf16 or fp16: the forward pass and the loss under autocast; float32: as they are."""
    if tc.dtype == "float32":
        return nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST[tc.dtype])


def set_learning_rate(optimizer: torch.optim.Optimizer, tc: TrainConfig, step: int, elapsed: float) -> float:
    """Set this step's learning rate: the schedule follows whichever of steps and time runs out first."""
    progress = step / tc.max_steps
    if tc.time_budget is not None:
        progress = max(progress, elapsed / tc.time_budget)
    lr = learning_rate(tc, step, progress)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
