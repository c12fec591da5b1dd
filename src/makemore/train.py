"""The training loop: optimiser, schedule, exact evaluation, checkpoints, logging, resume."""

from __future__ import annotations

import math
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from . import __version__, tensorboard
from .checkpoint import MODEL, STATE, SUMMARY, RunDir, load_state, load_tensors, save_tensors, write_json
from .api import load_dataset
from .data import BUILTIN, IGNORE, SPLIT_NAMES, Dataset, Packed, pack_rows, windows
from .device import pick_device
from .diagnostics import DEFAULT_INTERVAL, Diagnostics
from .errors import MakemoreError, RunError
from .evaluate import EvalResult, evaluate
from .models import DEFAULT_MODEL, CharModel, ModelConfig, build, get_spec

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("constant", "step", "cosine")
STEP_LOSS = "train.step_loss"  # state.safetensors: the training loss of every step, for `makemore plot --kind loss`


@dataclass
class TrainConfig:
    max_steps: int = 10_000
    time_budget: float | None = None  # seconds; stop at whichever of max_steps/time_budget comes first
    batch_size: int = 32  # items per batch ("windows" models: characters per batch)
    optimizer: str = "adamw"
    lr: float = 1e-3
    lr_schedule: str = "constant"
    weight_decay: float = 0.01  # AdamW only
    warmup_steps: int = 0
    ema: float = 0.0  # decay of a moving average of the weights, evaluated and kept instead of the last weights; 0: off
    eval_interval: int | None = None  # default: about 20 evaluations per run
    seed: int = 1337
    split_seed: int = 42
    diagnostics: bool = False  # record activation, gradient and update statistics (diagnostics.py)
    diagnostics_interval: int | None = None  # default: diagnostics.DEFAULT_INTERVAL
    tensorboard: bool = False  # also log losses and lr to RUN/tensorboard

    def validate(self) -> None:
        for name in ("max_steps", "warmup_steps"):
            if getattr(self, name) < 0:
                raise MakemoreError(f"--{name.replace('_', '-')} must be >= 0 (got {getattr(self, name)})")
        for name in ("batch_size", "eval_interval", "diagnostics_interval"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise MakemoreError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
        if self.time_budget is not None and not self.time_budget > 0:
            raise MakemoreError(f"--time-budget must be > 0 seconds (got {self.time_budget})")
        if not self.lr > 0:
            raise MakemoreError(f"--lr must be > 0 (got {self.lr})")
        if not 0 <= self.ema < 1:
            raise MakemoreError(f"--ema must be in [0, 1), e.g. 0.999 (got {self.ema}); 0 turns the average off")
        if self.weight_decay < 0:
            raise MakemoreError(f"--weight-decay must be >= 0 (got {self.weight_decay})")
        if self.optimizer not in OPTIMIZERS:
            raise MakemoreError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        if self.lr_schedule not in SCHEDULES:
            raise MakemoreError(f"unknown lr schedule {self.lr_schedule!r}; choose one of: {', '.join(SCHEDULES)}")
        if self.diagnostics_interval is not None and not self.diagnostics:
            raise MakemoreError("--diagnostics-interval sets how often --diagnostics records; pass --diagnostics too")

    @property
    def interval(self) -> int:
        return self.eval_interval or max(1, min(2000, self.max_steps // 20))


def validate_model_config(config: ModelConfig) -> None:
    for name in ("block_size", "n_embd", "n_hidden", "n_layer", "n_head"):
        if getattr(config, name) < 1:
            raise MakemoreError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(config, name)})")
    if not 0 <= config.dropout < 1:
        raise MakemoreError(f"--dropout must be in [0, 1) (got {config.dropout})")
    for name in ("smoothing", "l2", "output_scale"):
        if getattr(config, name) < 0:
            raise MakemoreError(f"--{name.replace('_', '-')} must be >= 0 (got {getattr(config, name)})")


def learning_rate(cfg: TrainConfig, step: int, progress: float) -> float:
    """`progress` in [0, 1]: the larger of steps done and time spent, as fractions of the limits."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "step":
        return cfg.lr if progress < 0.5 else cfg.lr / 10
    if cfg.lr_schedule == "cosine":
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))  # decay to lr/10
    return cfg.lr


def make_optimizer(model: CharModel, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr)
    # decay matrices only: biases, norms and 1-d gains are not regularised (as in nanoGPT)
    decay = [p for p in params if p.dim() >= 2]
    other = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": other, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=(0.9, 0.99))


def resolve_configs(model: str | None, data: Dataset, model_overrides: dict, train_overrides: dict) -> tuple[str, ModelConfig, TrainConfig]:
    """The model's defaults from the registry, then the caller's overrides; options the model
    does not read are refused, so no flag is silently ignored."""
    name = model or DEFAULT_MODEL
    spec = get_spec(name)
    unused = [k for k, v in model_overrides.items() if v is not None and k not in spec.cls.options]
    if unused:
        flags = ", ".join("--" + k.replace("_", "-") for k in unused)
        raise MakemoreError(f"model {name} does not use {flags}; see `makemore models` for what it reads")
    mc = {**spec.config, **{k: v for k, v in model_overrides.items() if v is not None}}
    config = ModelConfig(vocab_size=len(data.vocab), max_len=data.max_len, **mc)
    validate_model_config(config)
    known = {f.name for f in fields(TrainConfig)}
    bad = [k for k in train_overrides if k not in known]
    if bad:
        raise MakemoreError(f"unknown training option(s): {', '.join(bad)}")
    tc = TrainConfig(split_seed=data.split_seed, **{**spec.train, **{k: v for k, v in train_overrides.items() if v is not None}})
    tc.validate()
    if tc.diagnostics and spec.cls.closed_form:
        raise MakemoreError(f"{name} is fitted by counting, without gradient steps: there is nothing for --diagnostics to record")
    return name, config, tc


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    seconds: float
    final: dict[str, EvalResult]
    interrupted: bool = False


class Batches:
    """Random batches of training items: a row gather, no per-item Python. "rows" models get
    the same items two to a row (data.pack_rows) instead of one padded row each."""

    def __init__(self, model: CharModel, data: Dataset, cfg: TrainConfig, device: torch.device):
        train = data.packed("train")
        self.unit = model.batch_unit
        if self.unit == "windows":
            self.x, self.y = (t.to(device) for t in windows(train, model.config.block_size))
        elif self.unit == "rows":
            self.x, self.y = train.x, train.y  # rows are built on the CPU, then moved
        else:
            self.x, self.y = train.x.to(device), train.y.to(device)
        if self.unit != "windows":
            self.lengths = (train.y != IGNORE).sum(1)
        self.batch_size = cfg.batch_size
        self.device = device
        self.generator = torch.Generator().manual_seed(cfg.seed)

    def __call__(self):
        idx = torch.randint(0, self.x.shape[0], (self.batch_size,), generator=self.generator)
        if self.unit == "windows":
            idx = idx.to(self.device)
            return self.x[idx], self.y[idx]
        T = int(self.lengths[idx].max())  # drop columns that are padding in every row of this batch
        if self.unit == "rows":
            rows = pack_rows(Packed(self.x[idx, :T], self.y[idx, :T])).to(self.device)
            return rows, rows.y
        idx = idx.to(self.device)
        return self.x[idx, :T], self.y[idx, :T]


class WeightAverage:
    """An exponential moving average of the weights and buffers (Polyak averaging), kept beside
    the model. Evaluating the average instead of the last weights takes out the noise of the
    last steps: benchmarks/results/models.md has the lstm with it (val 1.9128 after 600 s on
    names.txt) and without it (lstm-no-ema, 1.9175). The decay ramps up as (1 + n) / (10 + n)
    to `decay`, so short runs are not dominated by the first weights."""

    def __init__(self, model: CharModel, decay: float):
        self.decay, self.updates = decay, 0
        self.averaged = AveragedModel(model, multi_avg_fn=self.blend, use_buffers=True)

    @property
    def model(self) -> CharModel:
        return self.averaged.module

    @torch.no_grad()
    def blend(self, averaged: list[torch.Tensor], current: list[torch.Tensor], _n) -> None:
        if not averaged[0].is_floating_point():  # counters such as BatchNorm's num_batches_tracked
            torch._foreach_copy_(averaged, current)
            return
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(averaged, current, 1 - decay)

    def update(self, model: CharModel) -> None:
        self.averaged.update_parameters(model)
        self.updates += 1


def batch_loss(model: CharModel, x, y: torch.Tensor) -> torch.Tensor:
    """Mean NLL of a batch from Batches: `x` is token ids, windows, or Rows, by the model's batch_unit."""
    if model.batch_unit == "windows":
        logits = model.forward_windows(x)
    elif model.batch_unit == "rows":
        logits = model.forward_rows(x)
    else:
        logits = model(x, mask=y != IGNORE)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE)


def run_config(name: str, config: ModelConfig, tc: TrainConfig, data: Dataset, source: str, n_params: int) -> dict:
    return {
        "makemore_version": __version__,
        "model": name,
        "model_config": config.to_dict(),
        "train_config": asdict(tc),
        "vocab": data.vocab.chars,
        "params": n_params,
        "data": {
            "source": source,
            "fingerprint": data.fingerprint,
            "items": len(data.items),
            "split_seed": data.split_seed,
            "split": {s: {"items": len(data.splits[s]), "chars": data.packed(s).chars} for s in SPLIT_NAMES},
        },
    }


def data_source(spec: str | None, data: Dataset) -> str:
    """How config.json names the data: a built-in name, or an absolute path."""
    spec = spec or "names"
    return spec if spec in BUILTIN else str(data.path.resolve())


def train(
    data: str | None = None,
    model: str | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    force: bool = False,
    quiet: bool = False,
    log=print,
    **options,
) -> TrainResult:
    """Train a model on a file of lines (or a built-in dataset) into the run directory `out`.

    `options` are ModelConfig fields (n_embd=64, batchnorm=True, ...) and TrainConfig fields
    (max_steps=1000, lr=0.1, ...); unset ones take the model's defaults from the registry.
    """
    model_fields = {f.name for f in fields(ModelConfig)} - {"vocab_size", "max_len"}
    model_overrides = {k: v for k, v in options.items() if k in model_fields}
    train_overrides = {k: v for k, v in options.items() if k not in model_fields}
    split_seed = train_overrides.pop("split_seed", None)
    dataset = Dataset.load(data, 42 if split_seed is None else split_seed)
    name, config, tc = resolve_configs(model, dataset, model_overrides, train_overrides)
    if tc.tensorboard:
        tensorboard.require()
    dev = pick_device(device)
    run = RunDir(out or Path("runs") / name)
    if run.path.exists() and not (run.path.is_dir() and not any(run.path.iterdir())):
        if not force:
            raise MakemoreError(f"{run.path} already exists; pass --resume {run.path} to continue it, --force to replace it, or another --out")
        if not run.exists():  # a file, or a folder that is not a run: not ours to delete
            raise MakemoreError(f"{run.path} exists and is not a makemore run directory; refusing to replace it, choose another --out")
        shutil.rmtree(run.path)

    torch.manual_seed(tc.seed)
    net = build(name, config).to(dev)
    cfg = run_config(name, config, tc, dataset, data_source(data, dataset), net.num_params())
    # the run directory appears only once everything above has been checked
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(cfg)
    return Trainer(run, net, dataset, tc, dev, quiet, log).fit()


def resume(run_path: str | Path, device: str = "auto", quiet: bool = False, log=print, **limits) -> TrainResult:
    """Continue a run from its last checkpoint; `limits` may raise max_steps or set time_budget."""
    run = RunDir(run_path)
    cfg = run.read_config()
    if not run.file(STATE).exists():
        raise RunError(f"{run.path} has no checkpoint to resume from ({STATE}); start a new run")
    dataset = load_dataset(cfg)
    tc = TrainConfig(**cfg["train_config"])
    for k, v in limits.items():
        if v is not None:
            setattr(tc, k, v)
    tc.validate()
    if tc.tensorboard:
        tensorboard.require()
    cfg["train_config"] = asdict(tc)
    dev = pick_device(device)
    net = build(cfg["model"], ModelConfig.from_dict(cfg["model_config"])).to(dev)
    run.write_config(cfg)
    return Trainer(run, net, dataset, tc, dev, quiet, log).fit(resume=True)


class Trainer:
    def __init__(self, run: RunDir, model: CharModel, data: Dataset, cfg: TrainConfig, device, quiet: bool, log):
        self.run, self.model, self.data, self.cfg, self.device = run, model, data, cfg, device
        self.quiet, self.log = quiet, log
        self.eval_sets = {s: data.packed(s).to(device) for s in ("train", "val")}
        self.step = 0
        self.elapsed = 0.0  # training seconds, summed over resumed sessions
        self.best_val = math.inf
        self.losses = torch.empty(0)  # training loss of every step so far, kept in the checkpoint
        self.pending: list[torch.Tensor] = []  # losses since the last checkpoint, still on the device
        self.diagnostics = Diagnostics(model, run, cfg.diagnostics_interval or DEFAULT_INTERVAL) if cfg.diagnostics else None
        self.board = None
        self.average = WeightAverage(model, cfg.ema) if cfg.ema else None

    @property
    def kept(self) -> CharModel:
        """The model that is evaluated and saved: the weight average when there is one."""
        return self.average.model if self.average else self.model

    def evaluate_now(self, lr: float, chars_per_sec: float) -> dict:
        record = {"step": self.step}
        for split, packed in self.eval_sets.items():
            record[f"{split}_loss"] = evaluate(self.kept, packed, split).nll
        record.update({"lr": lr, "chars_per_sec": round(chars_per_sec, 1), "elapsed": round(self.elapsed, 3)})
        self.run.append_metrics(record)
        if self.board:
            self.board.evaluation(record)
        if record["val_loss"] < self.best_val:
            self.best_val = record["val_loss"]
            self.run.save_model(self.kept)
        return record

    def save_state(self, opt: torch.optim.Optimizer, batches: Batches) -> None:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        osd = opt.state_dict()
        scalars = {}
        for idx, st in osd["state"].items():
            for key, value in st.items():
                if torch.is_tensor(value):
                    tensors[f"optim.{idx}.{key}"] = value
                else:
                    scalars[f"{idx}.{key}"] = value
        if self.average:
            tensors.update({f"average.{k}": v for k, v in self.average.averaged.state_dict().items()})
        tensors[STEP_LOSS] = self.losses
        tensors["rng.batches"] = batches.generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        meta = {"step": self.step, "elapsed": self.elapsed, "best_val": self.best_val,
                "average_updates": self.average.updates if self.average else 0,
                "param_groups": osd["param_groups"], "optim_scalars": scalars}
        save_tensors(self.run.file(STATE), tensors, meta)

    def load_state(self, opt: torch.optim.Optimizer, batches: Batches) -> None:
        tensors, meta = load_tensors(self.run.file(STATE))
        if meta is None:
            raise RunError(f"{self.run.file(STATE)} has no training state; start a new run")
        load_state(self.model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, self.run.file(STATE))
        state: dict = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, idx, key = k.split(".", 2)
                state.setdefault(int(idx), {})[key] = v
        for k, v in meta["optim_scalars"].items():
            idx, key = k.split(".", 1)
            state.setdefault(int(idx), {})[key] = v
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        batches.generator.set_state(tensors["rng.batches"])
        torch.set_rng_state(tensors["rng.torch"])
        self.step, self.elapsed, self.best_val = meta["step"], meta["elapsed"], meta["best_val"]
        if self.average:
            self.average.averaged.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("average.")})
            self.average.updates = meta["average_updates"]
        self.losses = tensors[STEP_LOSS]
        self.run.truncate_metrics(self.step)
        if self.diagnostics:
            self.diagnostics.truncate(self.step)

    def fit(self, resume: bool = False) -> TrainResult:
        model, cfg = self.model, self.cfg
        interrupted = False
        if model.closed_form:
            self.board = tensorboard.Board(self.run.path, 0) if cfg.tensorboard else None
            model.fit(self.data.packed("train").to(self.device))
            self.evaluate_now(0.0, 0.0)
        else:
            batches = Batches(model, self.data, cfg, self.device)
            opt = make_optimizer(model, cfg)
            if resume:
                self.load_state(opt, batches)
                self.log(f"resuming {self.run.path} at step {self.step}")
            self.board = tensorboard.Board(self.run.path, self.step) if cfg.tensorboard else None
            interrupted = self.loop(opt, batches)
        if self.board:
            self.board.close()
        if not self.run.file(MODEL).exists():  # Ctrl-C before the first evaluation: keep what there is
            self.run.save_model(self.kept)
        self.run.load_weights(model)  # finish with the best model by val NLL
        final = {s: evaluate(model, self.data.packed(s).to(self.device), s) for s in SPLIT_NAMES}
        write_json(self.run.file(SUMMARY), {"step": self.step, "seconds": round(self.elapsed, 2), "interrupted": interrupted,
                                            **{s: r.to_dict() for s, r in final.items()}})
        return TrainResult(self.run.path, self.step, self.elapsed, final, interrupted)

    def loop(self, opt: torch.optim.Optimizer, batches: Batches) -> bool:
        """Train until max_steps or the time budget; returns True if stopped by Ctrl-C."""
        model, cfg = self.model, self.cfg
        model.train()
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=self.quiet, unit="step", dynamic_ncols=True)
        start, chars, window_start, lr, ema = time.perf_counter() - self.elapsed, 0, time.perf_counter(), cfg.lr, None
        throughput = 0.0
        try:
            while self.step < cfg.max_steps:
                self.elapsed = time.perf_counter() - start
                if cfg.time_budget is not None and self.elapsed >= cfg.time_budget:
                    break
                progress = self.step / cfg.max_steps
                if cfg.time_budget is not None:
                    progress = max(progress, self.elapsed / cfg.time_budget)
                lr = learning_rate(cfg, self.step, progress)
                for group in opt.param_groups:
                    group["lr"] = lr
                x, y = batches()
                with self.watch(lr):
                    loss = batch_loss(model, x, y)
                    opt.zero_grad(set_to_none=True)
                    (loss + model.penalty()).backward()
                    opt.step()
                if self.average:
                    self.average.update(model)
                self.pending.append(loss.detach())
                self.step += 1
                chars += (y != IGNORE).sum()  # a tensor: read back only every 50 steps, no per-step GPU sync
                bar.update(1)
                if self.step % 50 == 0 or self.step == cfg.max_steps:
                    value = loss.item()
                    ema = value if ema is None else 0.9 * ema + 0.1 * value
                    now = time.perf_counter()
                    throughput = int(chars) / max(now - window_start, 1e-9)
                    chars, window_start = 0, now
                    bar.set_postfix(loss=f"{ema:.4f}", best_val=f"{self.best_val:.4f}", chars_s=f"{throughput:,.0f}", refresh=False)
                if self.step % cfg.interval == 0:
                    self.checkpoint(opt, batches, lr, throughput, start)
                    chars, window_start = 0, time.perf_counter()  # throughput leaves evaluation time out
                    model.train()
        except KeyboardInterrupt:
            bar.close()
            self.log(f"interrupted at step {self.step}; the best model so far is kept in {self.run.path}")
            return True
        bar.close()
        self.elapsed = time.perf_counter() - start
        if not self.run.read_metrics() or self.run.read_metrics()[-1]["step"] != self.step:
            self.checkpoint(opt, batches, lr, throughput, start)
        return False

    def watch(self, lr: float):
        """Diagnostics of this step's forward, backward and update when one is due; else nothing."""
        if self.diagnostics is None or not self.diagnostics.due(self.step):
            return nullcontext()
        return self.diagnostics.watch(self.step, lr)

    def checkpoint(self, opt, batches, lr, throughput, start) -> None:
        self.elapsed = time.perf_counter() - start
        self.keep_step_losses()
        if self.diagnostics:
            self.diagnostics.flush()
        self.evaluate_now(lr, throughput)
        self.save_state(opt, batches)

    def keep_step_losses(self) -> None:
        """Move the losses since the last checkpoint off the device: one copy here, not a sync every step."""
        if self.pending:
            new = torch.stack(self.pending).float().cpu()
            if self.board:
                self.board.steps(len(self.losses), new)
            self.losses = torch.cat([self.losses, new])
            self.pending = []
