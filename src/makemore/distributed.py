"""Training on several processes at once (DistributedDataParallel), as torchrun starts them.

torchrun starts one makemore process per rank and tells each its place in the environment
(WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). Every rank draws the same global batch
from the same seeded generator and trains on its own share of the rows; DDP averages the
gradients. Rank 0 alone evaluates and writes the run directory; the ranks exchange a few numbers
where they must agree: whether rank 0 could set up the run directory, whether a loss diverged,
whether the time budget is spent (rank 0's clock) and whether a signal asked any of them to stop.

A single process is rank 0 of 1: every method here then does what one process would, with no
communication, so a one-process run trains exactly as before.
"""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager

import torch
from torch import nn

from .errors import Diverged, MakemoreError, world_size


class Failed(MakemoreError):
    """Rank 0 failed where all ranks wait on it; it reports why, the others stop quietly with its status."""

    def __init__(self, exit_code: int):
        super().__init__("rank 0 failed; see its message")
        self.exit_code = exit_code


class Ranks:
    """This process's place among the processes training one run, and what they exchange."""

    def __init__(self, device: torch.device, rank: int = 0, world: int = 1):
        self.device, self.rank, self.world = device, rank, world

    @property
    def main(self) -> bool:
        """Rank 0: evaluates, writes the run directory, logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def share(self, rows: int) -> slice:
        """The rows of a global batch of `rows` this rank trains on: as even as the count allows."""
        return slice(rows * self.rank // self.world, rows * (self.rank + 1) // self.world)

    def seed_dropout(self, seed: int) -> None:
        """After the model is built (the same on every rank): each rank its own random stream, so
        dropout masks differ from rank to rank; rank 0 goes on with the one-process stream."""
        if self.rank > 0:
            torch.manual_seed(seed + self.rank)

    def on_main(self, work):
        """Rank 0 does `work`; its result, or the fact that it failed, reaches every rank. A failure
        is raised on rank 0 as it was and as `Failed` (or the same Diverged) on the others."""
        if not self.distributed:
            return work()
        outcome = [None]
        if self.main:
            try:
                outcome[0] = ("ok", work())
            except MakemoreError as e:
                outcome[0] = ("error", type(e).__name__, e.exit_code)
                self.broadcast(outcome)
                raise
            except BaseException:
                outcome[0] = ("error", "", 1)
                self.broadcast(outcome)
                raise
        self.broadcast(outcome)
        if outcome[0][0] == "ok":
            return outcome[0][1]
        raise Diverged("diverged (rank 0 reports)") if outcome[0][1] == "Diverged" else Failed(outcome[0][2])

    def broadcast(self, objects: list) -> None:
        torch.distributed.broadcast_object_list(objects, src=0)

    def any_of(self, *flags: bool | torch.Tensor) -> tuple[bool, ...]:
        """For each flag, whether it is set on any rank (one exchange for all of them)."""
        if not self.distributed:
            return tuple(bool(f) for f in flags)
        t = torch.stack([torch.as_tensor(f, dtype=torch.int32, device=self.device) for f in flags])
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return tuple(bool(f) for f in t.tolist())

    def all(self, flag: torch.Tensor) -> bool:
        """Whether `flag` is set on every rank."""
        if not self.distributed:
            return bool(flag)
        return not self.any_of(~flag)[0]

    def total(self, t: torch.Tensor) -> torch.Tensor:
        """The sum of `t` over the ranks."""
        if not self.distributed:
            return t
        t = t.clone()
        torch.distributed.all_reduce(t)
        return t

    def gather(self, t: torch.Tensor) -> list[torch.Tensor]:
        """`t` from every rank (the same shape on each), in rank order, on t's device (the exchange
        itself runs on this rank's: NCCL moves only GPU tensors)."""
        if not self.distributed:
            return [t]
        here = t.to(self.device).contiguous()
        parts = [torch.empty_like(here) for _ in range(self.world)]
        torch.distributed.all_gather(parts, here)
        return [p.to(t.device) for p in parts]

    def wrap(self, module: nn.Module) -> nn.Module:
        """`module` under DistributedDataParallel, which averages the gradients over the ranks."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(module, device_ids=[self.device.index] if self.device.type == "cuda" else None)


@contextmanager
def ranks_of(device: torch.device):
    """This process's Ranks: one process, or the ranks torchrun started, joined in a process group
    (gloo on the CPU, NCCL on CUDA GPUs, each rank its own GPU) until the block ends."""
    world = world_size()
    if world == 1:
        yield Ranks(device)
        return
    dist = torch.distributed
    if not dist.is_available():
        raise MakemoreError("this PyTorch was built without torch.distributed; train in one process (without torchrun)")
    if device.type == "mps":
        raise MakemoreError("distributed training runs on CPUs (gloo) or CUDA GPUs (NCCL), not on Apple's MPS; "
                            "pass --device cpu, or train in one process")
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        per_node, gpus = int(os.environ.get("LOCAL_WORLD_SIZE", world)), torch.cuda.device_count()
        if per_node > gpus:
            raise MakemoreError(f"{per_node} processes on this machine but {gpus} CUDA GPUs; start at most one per GPU "
                                f"(--nproc-per-node {gpus})")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        if not dist.is_gloo_available():
            raise MakemoreError("distributed training on the CPU needs PyTorch's gloo backend, which this build lacks")
        backend = "gloo"
    dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    try:
        yield Ranks(device, rank, world)
        # the trainer's DistributedDataParallel wrapper holds the group and sits in reference
        # cycles: freed only by a later collection, perhaps at interpreter exit, its gloo threads
        # were seen to abort the rank ("terminate called without an active exception"). Free it
        # now, while the group is whole; then every rank meets before any tears the group down.
        gc.collect()
        dist.barrier()
    finally:
        dist.destroy_process_group()
