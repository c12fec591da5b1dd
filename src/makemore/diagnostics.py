"""The health of a deep network, as lecture 3 checks it, recorded while training (--diagnostics).

Every `interval` steps (step 0, at initialisation, included) the training loop runs one update
inside `Diagnostics.watch`, which records:

- the output of every nonlinearity (tanh, sigmoid, GELU, ReLU): mean, std, histogram, and for
  tanh the share of units saturated (|t| > 0.97, where tanh's gradient 1 - t^2 is almost gone);
- the gradient reaching each of those outputs;
- every weight matrix (parameters with 2+ dimensions, as in the lecture): its gradient's
  histogram, the grad:data ratio std(grad) / std(W), and the update-to-data ratio
  log10(std(ΔW) / std(W)) of the optimiser's actual step (the lecture's guide: about -3).

Nonlinearities are found by intercepting calls to torch.tanh / torch.sigmoid / F.gelu / F.relu
(a TorchFunctionMode), so the models need no hooks of their own; each is named after the module
that called it. Padding positions of item batches are included in the statistics. Fused kernels
(nn.RNN, nn.LSTM, nn.GRU) keep their nonlinearities out of sight, so only their weights are
seen; the recurrent models' readable cells (`--no-fused`) show theirs, layer by layer.

Records are kept in memory and appended to diagnostics.jsonl (one JSON object per watched step)
when training checkpoints, so the file always matches the checkpoint a resume starts from.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from functools import partial

import torch
from torch.overrides import TorchFunctionMode

from .store import DIAGNOSTICS, RunDir
from .config import DEFAULT_INTERVAL

ACTIVATIONS = ("tanh", "sigmoid", "gelu", "relu")
SATURATED = 0.97  # |tanh| above this counts as saturated, as in the lecture
BINS = 50
SPAN = 4  # histograms cover mean ± SPAN std


def histogram(t: torch.Tensor) -> dict:
    """Mean, std and a BINS-bin histogram of a tensor's values over mean ± SPAN std (within its
    min and max), so a few huge values do not squash the shape into one bin; `outside` counts
    the values beyond."""
    t = t.detach().float().flatten()
    mean, std = t.mean().item(), t.std().item() if t.numel() > 1 else 0.0
    lo, hi = max(t.min().item(), mean - SPAN * std), min(t.max().item(), mean + SPAN * std)
    if hi <= lo:  # a constant tensor: one bin around its value
        lo, hi = lo - 0.5, hi + 0.5
    counts = [int(c) for c in torch.histc(t, BINS, lo, hi).tolist()]
    return {"mean": mean, "std": std, "range": [lo, hi], "hist": counts, "outside": t.numel() - sum(counts)}


class Capture(TorchFunctionMode):
    """Keeps the output of every tanh/sigmoid/GELU/ReLU call, named by the innermost module running it."""

    def __init__(self, modules: list[str]):
        super().__init__()
        self.modules = modules  # the stack of running modules, kept by the forward hooks
        self.outputs: list[tuple[str, str, torch.Tensor]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        kind = getattr(func, "__name__", "")
        if kind in ACTIVATIONS and isinstance(out, torch.Tensor):
            if out.requires_grad:
                out.retain_grad()  # the gradient reaching this layer's output
            self.outputs.append((self.modules[-1] if self.modules else "", kind, out))
        return out


def layer_stats(outputs: list[tuple[str, str, torch.Tensor]]) -> list[dict]:
    """One entry per (module, nonlinearity); repeated calls (one per time step) are pooled."""
    groups: dict[tuple[str, str], list[torch.Tensor]] = {}
    for module, kind, out in outputs:
        groups.setdefault((module, kind), []).append(out)
    layers = []
    for (module, kind), outs in groups.items():
        values = torch.cat([o.detach().flatten() for o in outs])
        layer = {"name": f"{module} {kind}".strip(), "kind": kind, **histogram(values)}
        if kind == "tanh":
            layer["saturated"] = (values.abs() > SATURATED).float().mean().item()
        if all(o.grad is not None for o in outs):
            layer["grad"] = histogram(torch.cat([o.grad.flatten() for o in outs]))
        layers.append(layer)
    return layers


class Diagnostics:
    def __init__(self, model: torch.nn.Module, run: RunDir, interval: int = DEFAULT_INTERVAL):
        self.model, self.run, self.interval = model, run, interval
        self.weights = [(name, p) for name, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
        self.pending: list[dict] = []

    def due(self, step: int) -> bool:
        return step % self.interval == 0

    @contextmanager
    def watch(self, step: int, lr: float):
        """Run one forward, backward and optimiser step inside this; its statistics are recorded."""
        stack: list[str] = []

        def enter(module, args, name):
            stack.append(name)

        def leave(module, args, output):
            stack.pop()  # returns None: a hook's return value would replace the module's output

        hooks = []
        for name, module in self.model.named_modules():
            if name:  # the model itself is "" and may be entered through another method than forward
                hooks.append(module.register_forward_pre_hook(partial(enter, name=name)))
                hooks.append(module.register_forward_hook(leave))
        before = [p.detach().clone() for _, p in self.weights]
        capture = Capture(stack)
        try:
            with capture:
                yield
        finally:
            for h in hooks:
                h.remove()
        self.pending.append({"step": step, "lr": lr, "layers": layer_stats(capture.outputs),
                             "params": [self.param_stats(name, p, old) for (name, p), old in zip(self.weights, before)]})

    @staticmethod
    def param_stats(name: str, p: torch.Tensor, old: torch.Tensor) -> dict:
        data_std = old.float().std().item()
        update_std = (p.detach() - old).float().std().item()
        stats = {"name": name, "shape": list(p.shape), "data_std": data_std,
                 "update_data": math.log10(update_std / data_std) if update_std > 0 and data_std > 0 else None}
        if p.grad is not None:
            grad = histogram(p.grad)
            stats.update({"grad": grad, "grad_data": grad["std"] / data_std if data_std > 0 else None})
        return stats

    def flush(self) -> None:
        """Append the records since the last flush; called at each checkpoint."""
        if self.pending:
            self.run.append_records(DIAGNOSTICS, self.pending)
            self.pending = []

    def truncate(self, step: int) -> None:
        """Keep the records of the steps before `step`, the checkpoint a resumed run continues from."""
        self.run.rewrite_records(DIAGNOSTICS, [r for r in self.run.read_records(DIAGNOSTICS) if r["step"] < step])
