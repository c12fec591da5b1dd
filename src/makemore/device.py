"""Pick where tensors live: the best available accelerator, or what the user asked for."""

from __future__ import annotations

import os
import time
from typing import Callable

import torch

from .config import DEVICES
from .errors import MakemoreError


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


SAMPLE_SECONDS = 0.25  # long enough that a busy process shows as one (25 clock ticks), short beside a training run
Reader = Callable[[str], str]


def read_text(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read()


def core_ticks(stat: str, cores: set[int]) -> tuple[int, int, int]:
    """From /proc/stat: the clock ticks the given cores have spent busy and in all since boot, and how
    many of them it lists."""
    busy = total = found = 0
    for fields in map(str.split, stat.splitlines()):
        if fields and fields[0][:3] == "cpu" and fields[0][3:].isdigit() and int(fields[0][3:]) in cores:
            # user nice system idle iowait irq softirq steal; guest time is already inside user and nice
            ticks = [int(t) for t in fields[1:9]]
            busy, total, found = busy + sum(ticks) - ticks[3] - ticks[4], total + sum(ticks), found + 1
    return busy, total, found


def own_ticks(stat: str) -> int:
    """From /proc/self/stat: the clock ticks this process (all its threads) has run, user and system."""
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return int(fields[11]) + int(fields[12])


def busy_elsewhere(cores: set[int], read: Reader = read_text, sleep: Callable[[float], None] = time.sleep) -> float | None:
    """How many of `cores` other processes keep busy now, as a number of cores: the cores' busy clock
    ticks over SAMPLE_SECONDS less this process's own. None where there is no /proc/stat (macOS, Windows)."""
    try:
        busy, total, found = core_ticks(read("/proc/stat"), cores)
        own = own_ticks(read("/proc/self/stat"))
        sleep(SAMPLE_SECONDS)
        busy_after, total_after, _ = core_ticks(read("/proc/stat"), cores)
        own_after = own_ticks(read("/proc/self/stat"))
    except (OSError, ValueError, IndexError):  # absent, or not the format Linux writes
        return None
    if not found or total_after <= total:
        return None
    ticks_per_core = (total_after - total) / found
    return max(0.0, (busy_after - busy - (own_after - own)) / ticks_per_core)


def cpu_threads(requested: int | None = None, read: Reader = read_text,
                sleep: Callable[[float], None] = time.sleep) -> tuple[int, str]:
    """How many threads torch should use on the CPU, and why. Asked for: that. Else
    $OMP_NUM_THREADS, when set. Else the cores this process may run on, less the ones other
    processes keep busy now (/proc/stat over a quarter of a second, which this call waits for; the
    1-minute load average lags minutes behind a benchmark that has just ended). Without /proc/stat
    (macOS, Windows): the 1-minute load average, where there is one, else all the cores. Two threads
    beside a busy process spin-wait on each other and can run many times slower than one."""
    if requested is not None:
        return requested, "--threads"
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return int(os.environ["OMP_NUM_THREADS"]), "OMP_NUM_THREADS"
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    if len(cores) == 1:
        return 1, "1 core"
    busy = busy_elsewhere(cores, read, sleep)
    if busy is not None:
        why = f"{len(cores)} cores, {busy:.1f} busy elsewhere"
    elif hasattr(os, "getloadavg"):
        busy = os.getloadavg()[0]
        why = f"{len(cores)} cores, load {busy:.1f}"
    else:
        busy, why = 0.0, f"{len(cores)} cores, no load figures"
    return max(1, min(len(cores), len(cores) - round(busy))), why
