"""Pick where tensors live: the best available accelerator, or what the user asked for."""

from __future__ import annotations

import torch

from .errors import MakemoreError

DEVICES = ("auto", "cpu", "cuda", "mps")


def mps_available() -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise MakemoreError("--device cuda: no CUDA GPU is available here; use --device auto or cpu")
    if name == "mps" and not mps_available():
        raise MakemoreError("--device mps: Apple's Metal backend is not available here; use --device auto or cpu")
    if name not in DEVICES:
        raise MakemoreError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}")
    return torch.device(name)
