"""The learning-rate search of lecture 2 (seeds 000, 004): `makemore lr-find`.

Train a fresh model for a fixed number of steps while the learning rate grows exponentially
(the seeds' lrs = 10**torch.linspace(-3, 0, 1000)), and record each step's batch loss. The loss
falls while the rate is too small to matter, falls fastest in the useful range, then blows up.

The suggested rate is a third of the rate where the smoothed loss is lowest: the bottom of the
curve sits next to the blow-up, so it is backed off (docs/plots.md has the runs that chose a
third over the usual tenth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .config import MODEL_OPTIONS, SWEEP_OPTIONS, unknown_option
from .device import pick_device
from .errors import MakemoreError
from .models import build, get_spec
from .trainer import load_data, make_optimizer, resolve_configs

BACK_OFF = 3  # suggest the rate of the lowest smoothed loss divided by this
DIVERGED = 4.0  # stop once the smoothed loss is this many times its best: the rest of the sweep says nothing


@dataclass
class LRSearch:
    model: str
    optimizer: str
    lrs: list[float]  # one per step taken
    losses: list[float]  # each step's batch loss
    smoothed: list[float]  # exponential moving average of the losses, bias-corrected
    best_lr: float  # where the smoothed loss is lowest
    diverged: bool  # stopped early because the loss blew up

    @property
    def suggested(self) -> float:
        return self.best_lr / BACK_OFF


def lr_find(data: str | None = None, model: str | None = None, steps: int = 1000, lr_min: float = 1e-4, lr_max: float = 10.0,
            device: str = "auto", quiet: bool = False, **options) -> LRSearch:
    """Sweep the learning rate from lr_min to lr_max over `steps` steps; `options` are model
    options and the training options in SWEEP_OPTIONS, as for train()."""
    if steps < 2:
        raise MakemoreError(f"--steps must be at least 2 (got {steps})")
    if not 0 < lr_min < lr_max:
        raise MakemoreError(f"the learning rates must satisfy 0 < --lr-min < --lr-max (got {lr_min} and {lr_max})")
    for key in options:
        if key not in MODEL_OPTIONS and key not in SWEEP_OPTIONS:
            raise unknown_option(key, [*SWEEP_OPTIONS, *MODEL_OPTIONS])
    dataset = load_data(data, options)
    name, config, tc = resolve_configs(model, dataset, options)
    if get_spec(name).closed_form:
        raise MakemoreError(f"{name} is fitted by counting: it has no learning rate to search")
    dev = pick_device(device)
    torch.manual_seed(tc.seed)
    net = build(name, config).to(dev).train()
    batches = net.batches(dataset.packed("train"), tc.batch_size, torch.Generator().manual_seed(tc.seed), dev)
    opt = make_optimizer(net, tc)

    lrs = torch.logspace(math.log10(lr_min), math.log10(lr_max), steps).tolist()
    beta = 1 - 2 / (max(2, steps // 50) + 1)  # an average over ~steps/50 steps: a tenth of a decade on the default sweep
    losses, smoothed, avg, best, diverged = [], [], 0.0, math.inf, False
    for i, lr in enumerate(tqdm(lrs, disable=quiet, unit="step", dynamic_ncols=True)):
        for group in opt.param_groups:
            group["lr"] = lr
        loss = net.loss(batches())
        opt.zero_grad(set_to_none=True)
        (loss + net.penalty()).backward()
        opt.step()
        value = loss.item()  # the stopping rule needs it now; this loop is short and not the trainer's
        avg = beta * avg + (1 - beta) * value
        losses.append(value)
        smoothed.append(avg / (1 - beta ** (i + 1)))
        best = min(best, smoothed[-1])
        if not math.isfinite(value) or smoothed[-1] > DIVERGED * best:
            diverged = True
            break
    lrs = lrs[: len(losses)]
    finite = [(s, lr) for s, lr in zip(smoothed, lrs) if math.isfinite(s)]
    if not finite:
        raise MakemoreError(f"the loss was not finite from the first step; lower --lr-min (got {lr_min})")
    return LRSearch(name, tc.optimizer, lrs, losses, smoothed, min(finite)[1], diverged)
