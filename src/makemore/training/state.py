"""A run's progress, and state.safetensors, the checkpoint --resume continues from bit for bit.

`Progress` is everything a run has done so far, in one place: what the checkpoint saves (step,
seconds, best val NLL, every step's loss, the weight average's updates, seconds spent evaluating)
and what only this session holds (the losses still on the device, the last checkpoint's step,
the learning rate and throughput last measured).

The state file's format is written, read and checked here and nowhere else:

    model.NAME         the model's tensors           average.NAME   the weight average's (--ema)
    optimizer          its state_dict, as bytes      scaler         fp16's gradient scaler, as bytes
    rng.batches        the batch generator's state   rng.torch      the dropout stream (rank 0's)
    rng.torch.ranks    every rank's, a row each      train.step_loss  every step's loss (float32)
    metadata (JSON)    Progress.meta(): step, elapsed, best_val, average_updates, eval_seconds
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..store.files import RESTORE, damaged, one_line
from ..store.tensors import (header_data_bytes, header_metadata, load_state, load_tensors, loaded_bytes, save_tensors, saved_bytes,
                             tensor_bytes)
from ..config import MAX_STEPS

MODEL_PART, AVERAGE_PART = "model.", "average."
STEP_LOSS = "train.step_loss"  # for `makemore plot --kind loss`
RANK_RNG = "rng.torch.ranks"  # for a run of several processes: each rank's random state, a row each
# the file beyond its copies of the model (model, weight average, two AdamW moments) and its step
# losses: random states, the optimiser's bookkeeping, the pickle's framing
SLACK = 16 << 20
NUMBERS = {"step": (int,), "elapsed": (int, float), "best_val": (int, float), "average_updates": (int,)}
# tensors that --resume reads besides the model's and the average's: dtype and dimensions
TENSORS = {"rng.batches": (torch.uint8, 1), "rng.torch": (torch.uint8, 1), STEP_LOSS: (torch.float32, 1),
           "optimizer": (torch.uint8, 1)}


@dataclass
class Progress:
    step: int = 0
    elapsed: float = 0.0  # training seconds, summed over resumed sessions
    best_val: float = math.inf
    step_losses: torch.Tensor = field(default_factory=lambda: torch.empty(0))  # every step's loss up to the last evaluation
    average_updates: int = 0  # updates of the weight average so far
    eval_seconds: float = 0.0  # of `elapsed`, the seconds spent evaluating and checkpointing
    # this session's only
    pending: list[torch.Tensor] = field(default_factory=list)  # losses since the last evaluation, still on the device
    finite: torch.Tensor | bool = True  # every loss since the last look was finite (a device tensor once training)
    last_checkpoint: int | None = None  # the step of the last evaluation and checkpoint
    lr: float = 0.0  # this step's learning rate
    chars_per_sec: float = 0.0  # the throughput last measured

    def meta(self) -> dict:
        return {"step": self.step, "elapsed": self.elapsed, "best_val": self.best_val, "average_updates": self.average_updates,
                "eval_seconds": self.eval_seconds}


def part(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors saved under `prefix` (model., average.), named as their module names them."""
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def save(path: Path, training, rngs: list[torch.Tensor] | None = None) -> None:
    """Write `training`'s model, weight average, optimiser, random states and progress to `path`.
    `rngs`: every rank's dropout stream, for a run of several processes."""
    p = training.progress
    if training.average:
        p.average_updates = training.average.updates
    tensors = {MODEL_PART + k: v for k, v in training.model.state_dict().items()}
    if training.average:
        tensors.update({AVERAGE_PART + k: v for k, v in training.average.averaged.state_dict().items()})
    tensors["optimizer"] = saved_bytes(training.optimizer.state_dict())
    if training.scaler:
        tensors["scaler"] = saved_bytes(training.scaler.state_dict())
    tensors[STEP_LOSS] = p.step_losses
    tensors["rng.batches"] = training.generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state() if rngs is None else rngs[0]
    if rngs is not None:
        tensors[RANK_RNG] = torch.stack(rngs)
    save_tensors(path, tensors, p.meta())


def load(path: Path, training) -> None:
    """Restore `training` from the state at `path`: every rank its model, optimiser and random
    states; rank 0 also the weight average. Its progress becomes the checkpoint's."""
    tensors, meta = read(path, tensor_bytes(training.model))
    load_state(training.model, part(tensors, MODEL_PART), path)
    restore_optimizer(training.optimizer, tensors, path)
    if training.scaler and "scaler" in tensors:
        training.scaler.load_state_dict(loaded_bytes(tensors["scaler"], path, "gradient scaler state"))
    training.generator.set_state(tensors["rng.batches"])
    restore_torch_rng(tensors, training.ranks.rank, training.tc.seed + meta["step"])
    training.progress = replace(training.progress, step=meta["step"], elapsed=meta["elapsed"], best_val=meta["best_val"],
                                step_losses=tensors[STEP_LOSS], average_updates=meta["average_updates"],
                                eval_seconds=meta.get("eval_seconds", 0.0), last_checkpoint=meta["step"])
    if training.average:
        load_state(training.average.averaged, part(tensors, AVERAGE_PART), path)
        training.average.updates = meta["average_updates"]


def restore_torch_rng(tensors: dict[str, torch.Tensor], rank: int, fresh_seed: int) -> None:
    """The random stream dropout draws from: rank 0's is the one-process one; another rank's is
    its own as saved, or, when the run was saved by fewer ranks, a fresh one of its own."""
    saved = tensors.get(RANK_RNG)
    if rank == 0:
        torch.set_rng_state(tensors["rng.torch"])
    elif saved is not None and rank < len(saved) and saved.dim() == 2:
        torch.set_rng_state(saved[rank].clone())  # a row of `saved` (a view at an offset) crashes torch 2.13
    else:
        torch.manual_seed(fresh_seed + rank)


def read(path: Path, model_bytes: int | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and metadata of a state file, checked for what --resume reads: the metadata's
    numbers, the random states, the step losses and the optimiser's bytes. (The model's and the
    average's tensors are checked as they are loaded, load_state; the optimiser's by
    restore_optimizer.) With `model_bytes` (tensor_bytes of the run's model), a file whose header
    describes more than such a state holds (`limit`) is refused unread."""
    tensors, meta = load_tensors(path, None if model_bytes is None else bounds(path, model_bytes))
    check_meta(meta, path)
    for name, (dtype, dims) in TENSORS.items():
        t = tensors.get(name)
        if t is None:
            raise damaged(path, f"its training state has no {name}", "start a new run (a state from an older makemore "
                                                                     "cannot be resumed)" if name == "optimizer" else RESTORE)
        if t.dtype != dtype or t.dim() != dims:
            raise damaged(path, f"its {name} is a {t.dim()}-d {str(t.dtype).replace('torch.', '')} tensor, "
                                f"not a {dims}-d {str(dtype).replace('torch.', '')} one")
    return tensors, meta


def step_losses(path: Path, model_bytes: int) -> torch.Tensor:
    """Every step's training loss up to the checkpoint at `path` (read only if its header is of the
    size a model of `model_bytes` implies)."""
    tensors, _ = load_tensors(path, bounds(path, model_bytes))
    return tensors.get(STEP_LOSS, torch.empty(0)).float()


def check_meta(meta, source: Path) -> dict:
    """The metadata (Progress.meta) has what --resume reads, with the right types."""
    if not isinstance(meta, dict):
        raise damaged(source, "it has no training state (no metadata)", "start a new run")
    for key, types in NUMBERS.items():
        if key not in meta:
            raise damaged(source, f'its training state has no "{key}"')
        if type(meta[key]) not in types or key in ("step", "average_updates") and not 0 <= meta[key] <= MAX_STEPS:
            raise damaged(source, f'its training state\'s "{key}" is {json.dumps(meta[key])[:40]}, not a number it can use')
    if "eval_seconds" in meta and type(meta["eval_seconds"]) not in (int, float):  # absent in runs made before it was kept
        raise damaged(source, f'its training state\'s "eval_seconds" is {json.dumps(meta["eval_seconds"])[:40]}, not a number')
    return meta


def limit(model_bytes: int, step: int) -> int:
    """The most bytes of tensors a state file of a model of `model_bytes` at `step` holds: the
    model, its weight average and the optimiser's two moments (AdamW), a float32 loss per step,
    and SLACK for the rest."""
    return 4 * model_bytes + 4 * step + SLACK


def bounds(path: Path, model_bytes: int):
    """The check load_tensors makes of the header of a state file (at `path`) of a model of
    `model_bytes`, before reading its tensors: no more than `limit` of them."""
    def expect(header: dict) -> None:
        meta = check_meta(header_metadata(header, path), path)
        described, most = header_data_bytes(header, path), limit(model_bytes, meta["step"])
        if described > most:
            raise damaged(path, f"its header describes {described:,} bytes of tensors, more than the {most:,} the "
                                f"training state of this run's model at step {meta['step']:,} can hold")
    return expect


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Load the optimiser state saved in the "optimizer" tensor into `opt`, after checking that it
    comes from the same kind of optimiser over the same parameters: torch would otherwise accept
    SGD's state into AdamW, or a moment of the wrong shape, and fail later with a traceback or
    train on garbage."""
    kind = type(opt).__name__
    saved = loaded_bytes(tensors["optimizer"], source, "optimiser state")
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict) or not isinstance(saved.get("param_groups"), list):
        raise damaged(source, "its optimiser state is not an optimiser's state")
    now, groups = opt.state_dict()["param_groups"], saved["param_groups"]
    if len(groups) != len(now) or not all(isinstance(g, dict) for g in groups):
        raise damaged(source, f"its optimiser state has {len(groups)} parameter groups where this run's {kind} has {len(now)}")
    for g_saved, g_now in zip(groups, now):
        if set(g_saved) != set(g_now):
            other = sorted(set(g_saved) ^ set(g_now))
            raise damaged(source, f"its optimiser state was written by another optimiser than {kind} "
                                  f"(settings {', '.join(other[:4])} differ)")
        if g_saved["params"] != g_now["params"]:
            raise damaged(source, "its optimiser state covers other parameters than the model in config.json")
    params = {i: p for g_now, g in zip(now, opt.param_groups) for i, p in zip(g_now["params"], g["params"])}
    for idx, entry in saved["state"].items():
        if idx not in params or not isinstance(entry, dict):
            raise damaged(source, f"its optimiser state has an entry {idx!r} for no parameter of the model")
        for key, value in entry.items():
            if torch.is_tensor(value) and value.dim() > 0 and value.shape != params[idx].shape:
                raise damaged(source, f"its optimiser state {idx}.{key} has shape {list(value.shape)} where the parameter "
                                      f"has {list(params[idx].shape)}")
    try:
        opt.load_state_dict(saved)
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise damaged(source, f"its optimiser state does not fit this run's {kind} ({one_line(e)})") from None
