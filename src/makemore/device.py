"""Pick where tensors live: the best available accelerator, or what the user asked for."""

from __future__ import annotations

import os

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


def cpu_threads(requested: int | None = None) -> tuple[int, str]:
    """How many threads torch should use on the CPU, and why. Asked for: that. Else
    $OMP_NUM_THREADS, when set. Else the cores this process may run on, less the ones other
    processes keep busy (the 1-minute load average): two threads beside a busy process spin-wait
    on each other and can run many times slower than one."""
    if requested is not None:
        return requested, "--threads"
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return int(os.environ["OMP_NUM_THREADS"]), "OMP_NUM_THREADS"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, cores - round(busy))), f"{cores} cores, load {busy:.1f}"
