"""Training: from options to a run directory holding the best model, its metrics and a checkpoint.

`train` resolves the options against the model's registry defaults, checks everything, creates
the run directory and hands over to the `Trainer`; `resume` rebuilds a Trainer from a run
directory's last checkpoint. The Trainer's loop reads top to bottom: learning rate, batch, loss,
backward, step, weight average, log, and every `eval_every` steps an exact evaluation and a
checkpoint. Models fitted in closed form (the bigram counts) skip the loop. Under torchrun each
process runs a Trainer on its share of every batch, and rank 0 alone evaluates and writes
(distributed.py); one process is rank 0 of 1.
"""

from __future__ import annotations

import math
import shutil
import time
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from . import __version__, signals, tensorboard
from .checkpoint import (LOCK, MODEL, STATE, STEP_LOSS, SUMMARY, RunDir, load_state, loaded_bytes, read_state, restore_optimizer,
                         run_dataset, save_tensors, saved_bytes, tensor_bytes, write_json)
from .config import (MAX_PARAMS, TRAIN_OPTIONS, ModelConfig, OptionError, TrainConfig, check_flag, check_path, check_text,
                     resume_changes, split_options)
from .data import BUILTIN, IGNORE, SPLIT_NAMES, Dataset
from .device import DEVICES, cpu_threads, pick_device
from .diagnostics import DEFAULT_INTERVAL, Diagnostics
from .distributed import Ranks, ranks_of
from .errors import Diverged, MakemoreError, RunError, WriteFailed
from .evaluate import EvalResult, evaluate
from .models import DEFAULT_MODEL, CharModel, build, get_spec, model_options, why_not

RANK_RNG = "rng.torch.ranks"  # in STATE, for a run of several processes: each rank's random state, a row each
DIVERGENCE_CHECK = 10  # steps between looks at whether the loss is still finite (one device sync each)
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


def resolve_configs(model: str | None, data: Dataset, options: dict) -> tuple[str, ModelConfig, TrainConfig]:
    """The model's registry defaults, then the caller's options (None: keep the default). Unknown
    options, and options the model does not read, are refused: no option is silently ignored."""
    name = model or DEFAULT_MODEL
    spec = get_spec(name)
    given = {k: v for k, v in options.items() if v is not None}
    for_model, for_training = split_options(given)
    unused = [k for k in for_model if k not in model_options(name)]
    if unused:  # all of them at once: a model's wrong options often come together (another model's)
        raise OptionError(lambda show: f"model {name} does not use {', '.join(map(show, unused))}; "
                                       f"see `makemore models` for what it reads")
    config = replace(spec.config, vocab_size=len(data.vocab), max_len=data.max_len, **for_model)
    tc = replace(spec.train, **{**for_training, "split_seed": data.split_seed})  # the split the data was cut with
    check_applies(given, name, config, tc)
    return name, config, tc


def check_applies(given: dict, name: str, config: ModelConfig, tc: TrainConfig) -> None:
    """Refuse an option given for a model or run it does not apply to (models.why_not)."""
    for option in given:
        reason = why_not(option, name, config, tc)
        if reason:
            raise OptionError(reason)


def check_precision(tc: TrainConfig, device: torch.device) -> None:
    """Refuse, before anything is written, a --dtype or --compile this machine cannot run."""
    if tc.dtype == "fp16" and device.type != "cuda":
        raise OptionError(lambda show: f"{show('dtype')} fp16 trains on CUDA GPUs only (it needs a gradient scaler there); "
                                       f"on the {device.type} use bf16 or float32")
    if tc.dtype == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise OptionError(lambda show: f"{show('dtype')} bf16: this GPU has no bfloat16; use fp16 or float32")
    if tc.compile and device.type == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        raise OptionError(lambda show: f"{show('compile')} on the CPU needs a C++ compiler (g++ or clang++), and none is "
                                       "on the PATH; install one or train without it")


def check_size(name: str, config: ModelConfig) -> None:
    """Count the parameters on the meta device (no memory) and refuse a model too big to hold."""
    with torch.device("meta"):
        n = build(name, config).num_params()
    if n > MAX_PARAMS:
        raise MakemoreError(f"{name} with these options and a vocabulary of {config.vocab_size:,} tokens has {n:,} "
                            f"parameters, more than the {MAX_PARAMS:,} makemore allows; make --n-embd, --n-hidden, "
                            "--n-layer or --block-size smaller, or use data with fewer distinct characters")


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    seconds: float
    final: dict[str, EvalResult]
    interrupted: bool = False


def run_config(name: str, config: ModelConfig, tc: TrainConfig, data: Dataset, source: str, n_params: int) -> dict:
    """What config.json holds: enough to rebuild the vocabulary, the model and its data split."""
    return {
        "makemore_version": __version__,
        "model": name,
        "model_config": config.to_dict(),
        "train_config": tc.to_dict(),
        "vocab": data.vocab.alphabet,
        "labels": data.vocab.labels,  # empty for unlabelled data
        "params": n_params,
        "data": {
            "source": source,
            "fingerprint": data.fingerprint,
            "items": len(data.items),
            "split_seed": data.split_seed,
            "split": {s: {"items": len(data.splits[s]), "chars": data.packed(s).chars} for s in SPLIT_NAMES},
            "label_counts": data.label_counts("train"),  # the labels' prior: their frequencies in the training split
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

    `options` are ModelConfig options (n_embd=64, batchnorm=True, ...) and TrainConfig options
    (max_steps=1000, lr=0.1, split_seed=42, ...); unset ones take the model's registry defaults.
    An unknown option, a value of the wrong type or out of range raises MakemoreError, before
    anything is written.
    """
    check_path("data", data)
    check_text("model", model)
    check_path("out", out)
    check_common(device, quiet, log)
    check_flag("force", force)
    dataset = load_data(data, options)
    name, config, tc = resolve_configs(model, dataset, options)
    if tc.tensorboard:
        tensorboard.require()
    dev = pick_device(device)
    check_precision(tc, dev)
    check_size(name, config)
    run = RunDir(out or Path("runs") / name)
    with ranks_of(dev) as ranks, ExitStack() as held:
        check_batch(tc, ranks)
        ranks.on_main(lambda: run.check_new(force))  # rank 0 alone looks at and writes the run directory
        note = dataset.note()
        if note and ranks.main:
            log(f"makemore: note: {note}")

        torch.manual_seed(tc.seed)
        net = build(name, config).to(ranks.device)
        ranks.seed_dropout(tc.seed)
        made: list[Path] = []  # the lock file and folders this run made, which a failure before its first checkpoint removes
        ours = False  # whether the run directory is this run's: locked, and checked again under the lock

        def create():
            # the run directory appears only once everything above has been checked
            nonlocal ours
            made.extend(run.make())
            if not run.file(LOCK).exists():
                made.insert(0, run.file(LOCK))
            held.enter_context(run.lock())
            run.check_new(force)  # again, holding the lock: another process may have started here meanwhile
            ours = True
            run.create(run_config(name, config, tc, dataset, data_source(data, dataset), net.num_params()))

        try:
            ranks.on_main(create)
            return Trainer(run, net, dataset, tc, ranks.device, quiet, log, ranks).fit()
        except BaseException as e:
            if not ours:
                raise
            if not run.file(STATE).exists() and not run.file(SUMMARY).exists():
                # a new run that stopped before its first checkpoint holds nothing to resume or keep: it goes,
                # rather than stay a folder that looks like a run but has no model
                run.discard(made)
            if isinstance(e, WriteFailed):
                raise said_of_the_run(e, run) from None
            raise


def check_batch(tc: TrainConfig, ranks: Ranks) -> None:
    """Each of several processes needs a row of every batch."""
    if tc.batch_size < ranks.world:
        raise OptionError(lambda show: f"{show('batch_size')} {tc.batch_size} is fewer rows than the {ranks.world} processes "
                                       "training together; each needs at least one")


def load_data(data: str | None, options: dict) -> Dataset:
    """Read and split the data with the options that shape it, checked before the file is read."""
    split_options(options)  # a typo fails before the data is read
    shape = {name: options.get(name) for name in ("split_seed", "max_item_length")}
    shape = {name: TRAIN_OPTIONS[name].default if v is None else TRAIN_OPTIONS[name].check(v) for name, v in shape.items()}
    return Dataset.load(data, shape["split_seed"], max_item_chars=shape["max_item_length"])


def resume(run_path: str | Path, device: str = "auto", quiet: bool = False, log=print, **changes) -> TrainResult:
    """Continue a run from its last checkpoint. `changes` may set only the options declared
    resumable in config.py (config.RESUMABLE: its limits and how the machine computes): a run
    continues as it was configured."""
    changes = resume_changes({k: v for k, v in changes.items() if v is not None})
    check_path("run_path", run_path, optional=False)
    check_common(device, quiet, log)
    run = RunDir(run_path)
    run.read_config()  # a clear error for a missing or foreign directory before locking anything in it
    dev = pick_device(device)
    with ranks_of(dev) as ranks, ExitStack() as held:

        def take_over() -> dict:
            held.enter_context(run.lock())
            saved = run.read_config()  # config.json, as a dict
            if not run.file(STATE).exists():
                raise RunError(f"{run.path} has no checkpoint to resume from ({STATE}); start a new run with the same options")
            tc = replace(TrainConfig.from_dict(saved["train_config"]), **changes)
            check_applies(changes, saved["model"], ModelConfig.from_dict(saved["model_config"]), tc)
            if tc.tensorboard:
                tensorboard.require()
            check_precision(tc, dev)
            saved["train_config"] = tc.to_dict()
            return saved

        saved = ranks.on_main(take_over)  # rank 0 alone locks and checks the run directory; every rank gets its config
        dataset = run_dataset(saved, advice="put the original file back where it was")
        tc = TrainConfig.from_dict(saved["train_config"])
        check_batch(tc, ranks)
        net = build(saved["model"], ModelConfig.from_dict(saved["model_config"])).to(ranks.device)
        try:
            if ranks.main:
                run.write_config(saved)
            return Trainer(run, net, dataset, tc, ranks.device, quiet, log, ranks).fit(resume=True)
        except WriteFailed as e:
            raise said_of_the_run(e, run) from None


def check_common(device, quiet, log) -> None:
    """The arguments train and resume share, besides the options."""
    check_text("device", device, optional=False, choices=DEVICES)
    check_flag("quiet", quiet)
    if not callable(log):
        raise MakemoreError(f"log must be a function of one message, such as print (got {log!r:.60})")


def said_of_the_run(e: WriteFailed, run: RunDir) -> WriteFailed:
    """A write that failed during training, with what the run directory holds now and what to do:
    a full disk leaves the last checkpoint as it was (every write is atomic, and a cut append is
    cut back off), so once there is space `--resume` goes on from it; a new run that had none was
    discarded."""
    if not run.file(STATE).exists():
        return WriteFailed(e.path, e.error, "the run had no checkpoint yet, so nothing of it was kept; "
                                            + ("free some space and train again" if e.full else "fix that and train again"))
    todo = "the run directory is as its last checkpoint left it; "
    todo += "free some space, then" if e.full else "fix that, then"
    return WriteFailed(e.path, e.error, todo + f" `makemore train --resume {run.path}` goes on from there")


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


@dataclass
class TrainState:
    """A run's progress: saved in every checkpoint and restored by --resume as one unit."""

    step: int = 0
    elapsed: float = 0.0  # training seconds, summed over resumed sessions
    best_val: float = math.inf
    step_losses: torch.Tensor = field(default_factory=lambda: torch.empty(0))  # every step's batch loss
    average_updates: int = 0  # updates of the weight average so far
    eval_seconds: float = 0.0  # of `elapsed`, the seconds spent evaluating and checkpointing

    def meta(self) -> dict:
        return {"step": self.step, "elapsed": self.elapsed, "best_val": self.best_val, "average_updates": self.average_updates,
                "eval_seconds": self.eval_seconds}


class StepLoss(nn.Module):
    """A batch's training loss as a module's forward, for DistributedDataParallel (which averages
    the gradients of what runs through its wrapper's forward) and torch.compile to wrap."""

    def __init__(self, model: CharModel):
        super().__init__()
        self.model = model

    def forward(self, batch) -> torch.Tensor:
        return self.model.loss(batch)


class Trainer:
    """Trains `model` into `run`. Under torchrun, one Trainer per rank: each trains on its share of
    every batch, and rank 0 alone evaluates, keeps the weight average and writes (distributed.py)."""

    def __init__(self, run: RunDir, model: CharModel, data: Dataset, tc: TrainConfig, device, quiet: bool, log,
                 ranks: Ranks | None = None):
        self.ranks = ranks or Ranks(device)
        main = self.ranks.main
        self.run, self.model, self.data, self.tc, self.device = run, model, data, tc, device
        self.quiet, self.log = quiet or not main, log if main else (lambda message: None)
        self.eval_sets = {s: data.packed(s).to(device) for s in ("train", "val")} if main else {}
        self.state = TrainState()
        self.pending: list[torch.Tensor] = []  # losses since the last checkpoint, still on the device
        self.last_checkpoint: int | None = None  # the step of the last evaluation and checkpoint
        self.finite = torch.ones((), dtype=torch.bool, device=device)  # every loss since the last look was finite
        watched = tc.diagnostics and main
        self.diagnostics = Diagnostics(model, run, tc.diagnostics_interval or DEFAULT_INTERVAL) if watched else None
        self.average = WeightAverage(model, tc.ema) if tc.ema and main else None  # all ranks hold the same weights
        self.scaler = torch.amp.GradScaler(device.type) if tc.dtype == "fp16" else None  # fp16 gradients would underflow
        self.board = None

    @property
    def kept(self) -> CharModel:
        """The model that is evaluated and saved: the weight average when there is one."""
        return self.average.model if self.average else self.model

    def fit(self, resume: bool = False) -> TrainResult:
        before = torch.get_num_threads()
        if self.device.type == "cpu":
            torch.set_num_threads(cpu_threads(self.tc.threads)[0])
        try:
            # several ranks stop on a signal together, at a step they agree on (stop_here), not each where it is
            with signals.deferred() if self.ranks.distributed else nullcontext():
                return self.train(resume)
        finally:
            torch.set_num_threads(before)  # the caller's process is as it was

    def train(self, resume: bool) -> TrainResult:
        interrupted = False
        if self.model.closed_form:
            self.fit_closed_form()
        else:
            self.generator = torch.Generator().manual_seed(self.tc.seed)
            self.batches = self.model.batches(self.data.packed("train"), self.tc.batch_size, self.generator, self.device)
            self.optimizer = make_optimizer(self.model, self.tc)
            if resume:
                self.load_checkpoint()
                self.log(f"resuming {self.run.path} at step {self.state.step}")
            self.loss_of = self.loss_function()
            self.board = tensorboard.Board(self.run.path, self.state.step) if self.tc.tensorboard and self.ranks.main else None
            try:
                self.loop()
            except KeyboardInterrupt:
                interrupted = True
                self.log(f"interrupted at step {self.state.step}; the best model so far is kept in {self.run.path}")
            except Diverged as e:
                raise self.diverged(str(e)) from None
        return self.finish(interrupted)

    def loss_function(self):
        """What gives a batch's training loss: the model's own `loss`; with several ranks, under
        DistributedDataParallel; with --compile, compiled (evaluation runs the model uncompiled)."""
        if not self.ranks.distributed and not self.tc.compile:
            return self.model.loss
        step_loss = self.ranks.wrap(StepLoss(self.model))
        return torch.compile(step_loss) if self.tc.compile else step_loss

    def diverged(self, what: str) -> Diverged:
        """Keep the best finite model (never the diverged one) and say what happened and what to try.
        The last checkpoint, from before the divergence, stays as it was."""
        if self.board:
            self.board.close()
        advice = f"try a lower --lr than {self.tc.lr:g}" + (" or a longer --warmup-steps" if self.tc.optimizer == "adamw" else "")
        if not self.ranks.on_main(lambda: self.run.file(MODEL).exists()):
            return Diverged(f"training diverged at step {self.state.step} ({what}) before any model was worth keeping; {advice}")
        self.finish(interrupted=False, diverged=True)
        return Diverged(f"training diverged at step {self.state.step} ({what}); the best model before it, val NLL "
                        f"{self.state.best_val:.4g}, is kept in {self.run.path}; {advice}")

    def fit_closed_form(self) -> None:
        self.board = tensorboard.Board(self.run.path, 0) if self.tc.tensorboard and self.ranks.main else None
        self.model.fit(self.data.packed("train").to(self.device))
        # with no smoothing an unseen pair makes the NLL inf: a result, not a failure
        self.ranks.on_main(lambda: self.keep(self.evaluate(lr=0.0, chars_per_sec=0.0)))

    def loop(self) -> None:
        """Train until max_steps or the time budget, evaluating and checkpointing every eval_every steps."""
        model, tc, state = self.model, self.tc, self.state
        model.train()
        start = time.perf_counter() - state.elapsed
        lr, throughput, smooth_loss = tc.lr, 0.0, None
        chars, window_start = 0, time.perf_counter()
        with tqdm(total=tc.max_steps, initial=state.step, disable=self.quiet, unit="step", dynamic_ncols=True) as bar:
            while state.step < tc.max_steps:
                state.elapsed = time.perf_counter() - start
                if self.stop_here():
                    break
                lr = self.schedule()
                dropping = state.step >= tc.dropout_from  # --dropout-from: none before that step
                if model.dropping != dropping:
                    model.set_dropout(dropping)
                batch, share, batch_chars = self.next_batch()
                with self.watch(lr):
                    loss = self.update(batch, share)
                if self.average:
                    self.average.update(model)
                self.pending.append(loss.detach() if share is None else loss.detach() * share)
                self.finite &= torch.isfinite(loss.detach())
                state.step += 1
                if state.step % DIVERGENCE_CHECK == 0 and not self.ranks.all(self.finite):
                    raise Diverged("the training loss is no longer a finite number")
                bar.update(1)
                chars += batch_chars  # a tensor: read back only every 50 steps, no per-step GPU sync
                if state.step % 50 == 0 or state.step == tc.max_steps:
                    value = loss.item()  # this rank's share of the batch: the progress bar's estimate
                    smooth_loss = value if smooth_loss is None else 0.9 * smooth_loss + 0.1 * value
                    now = time.perf_counter()
                    throughput, chars, window_start = int(chars) / max(now - window_start, 1e-9), 0, now
                    bar.set_postfix(loss=f"{smooth_loss:.4f}", best_val=f"{state.best_val:.4f}", chars_s=f"{throughput:,.0f}", refresh=False)
                if state.step % tc.eval_every == 0:
                    state.elapsed = time.perf_counter() - start
                    self.checkpoint(lr, throughput)
                    chars, window_start = 0, time.perf_counter()  # throughput leaves evaluation time out
                    model.train()
        state.elapsed = time.perf_counter() - start
        if self.last_checkpoint != state.step:
            self.checkpoint(lr, throughput)

    def stop_here(self) -> bool:
        """Whether to stop before this step: the time budget is spent. With several ranks, rank 0's
        clock decides, so that every rank stops at the same step; and a signal to any rank (noted by
        signals.deferred) interrupts every rank here, where none is waiting on another."""
        tc, state = self.tc, self.state
        out_of_time = tc.time_budget is not None and state.elapsed >= tc.time_budget
        if not self.ranks.distributed:
            return out_of_time
        out_of_time, signalled = self.ranks.any_of(out_of_time and self.ranks.main, signals.requested is not None)
        if signalled:
            signals.act_on_request()
            raise KeyboardInterrupt  # another rank was signalled
        return out_of_time

    def next_batch(self):
        """This step's batch, this rank's share of its predicted characters and their number. One
        process trains on the whole batch (share None). Several each draw the same batch from the
        same generator and take their own rows of it."""
        if not self.ranks.distributed:
            batch = self.batches()
            return batch, None, (batch.y != IGNORE).sum()
        idx = self.batches.draw()
        batch = self.batches.take(idx[self.ranks.share(len(idx))])
        mine = (batch.y != IGNORE).sum()
        chars = self.ranks.total(mine)
        return batch, mine / chars, chars

    def update(self, batch, share: torch.Tensor | None) -> torch.Tensor:
        """One optimiser step on `batch`; returns its loss, the mean over its predicted characters.
        With several ranks, each weights its loss by its share of the batch's characters times the
        number of ranks: DDP's average of the ranks' gradients is then the gradient of the mean over
        the whole batch, as one process would compute it, however unevenly the characters fall."""
        model, opt = self.model, self.optimizer
        with self.autocast():
            loss = self.loss_of(batch)
        opt.zero_grad(set_to_none=True)
        objective = (loss if share is None else loss * (share * self.ranks.world)) + model.penalty()
        if self.scaler:  # fp16: scale the loss up so small gradients survive, and skip steps that overflow
            self.scaler.scale(objective).backward()
            self.scaler.step(opt)
            self.scaler.update()
        else:
            objective.backward()
            opt.step()
        return loss

    def autocast(self):
        """--dtype bf16 or fp16: the forward pass and the loss under autocast; float32: as they are."""
        if self.tc.dtype == "float32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=AUTOCAST[self.tc.dtype])

    def schedule(self) -> float:
        """Set this step's learning rate: the schedule follows whichever of steps and time runs out first."""
        tc, state = self.tc, self.state
        progress = state.step / tc.max_steps
        if tc.time_budget is not None:
            progress = max(progress, state.elapsed / tc.time_budget)
        lr = learning_rate(tc, state.step, progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def watch(self, lr: float):
        """Diagnostics of this step's forward, backward and update when one is due; else nothing."""
        if self.diagnostics is None or not self.diagnostics.due(self.state.step):
            return nullcontext()
        return self.diagnostics.watch(self.state.step, lr)

    def evaluate(self, lr: float, chars_per_sec: float) -> dict:
        """The kept model's exact train and val NLL, as a metrics.jsonl record (`keep` writes it)."""
        record = {"step": self.state.step}
        for split, packed in self.eval_sets.items():
            record[f"{split}_loss"] = evaluate(self.kept, packed, split).nll
        record.update({"lr": lr, "chars_per_sec": round(chars_per_sec, 1), "elapsed": round(self.state.elapsed, 3),
                       "train_seconds": round(self.state.elapsed - self.state.eval_seconds, 3)})
        return record

    def keep(self, record: dict) -> None:
        """Append an evaluation to metrics.jsonl; save the kept model if its val NLL is the best yet."""
        self.run.append_metrics(record)
        if self.board:
            self.board.evaluation(record)
        if record["val_loss"] < self.state.best_val:
            self.state.best_val = record["val_loss"]
            self.run.save_model(self.kept)

    def checkpoint(self, lr: float, throughput: float) -> None:
        """Evaluate, keep the model if it is the best, and save the state --resume starts from;
        a diverged model is never checkpointed, so the last checkpoint stays a finite one. With
        several ranks, rank 0 does this while the others wait; they exchange what it needs first."""
        if not self.ranks.all(self.finite):
            raise Diverged("the training loss is no longer a finite number")
        began = time.perf_counter()
        self.sum_step_losses()
        rngs = self.ranks.gather(torch.get_rng_state()) if self.ranks.distributed else None  # each rank's dropout stream
        self.ranks.on_main(lambda: self.evaluate_and_save(lr, throughput, rngs))
        self.last_checkpoint = self.state.step
        self.state.eval_seconds += time.perf_counter() - began  # metrics' train_seconds leave it out

    def evaluate_and_save(self, lr: float, throughput: float, rngs: list[torch.Tensor] | None) -> None:
        record = self.evaluate(lr, throughput)
        for split in self.eval_sets:
            if not math.isfinite(record[f"{split}_loss"]):
                raise Diverged(f"the {split} NLL is {record[f'{split}_loss']}")
        self.keep_step_losses()
        if self.diagnostics:
            self.diagnostics.flush()
        self.keep(record)
        self.save_checkpoint(rngs)

    def sum_step_losses(self) -> None:
        """With several ranks, each step's loss over the whole batch is the sum of the ranks' shares
        of it (each its mean times its share of the characters): one exchange per checkpoint."""
        if self.ranks.distributed and self.pending:
            total = self.ranks.total(torch.stack(self.pending))
            self.pending = list(total) if self.ranks.main else []

    def keep_step_losses(self) -> None:
        """Move the losses since the last checkpoint off the device: one copy here, not a sync every step."""
        if self.pending:
            new = torch.stack(self.pending).float().cpu()
            if self.board:
                self.board.steps(len(self.state.step_losses), new)
            self.state.step_losses = torch.cat([self.state.step_losses, new])
            self.pending = []

    def save_checkpoint(self, rngs: list[torch.Tensor] | None = None) -> None:
        """state.safetensors: weights, weight average, optimiser, random states and progress."""
        if self.average:
            self.state.average_updates = self.average.updates
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.average:
            tensors.update({f"average.{k}": v for k, v in self.average.averaged.state_dict().items()})
        tensors["optimizer"] = saved_bytes(self.optimizer.state_dict())
        if self.scaler:
            tensors["scaler"] = saved_bytes(self.scaler.state_dict())
        tensors[STEP_LOSS] = self.state.step_losses
        tensors["rng.batches"] = self.generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state() if rngs is None else rngs[0]
        if rngs is not None:
            tensors[RANK_RNG] = torch.stack(rngs)
        save_tensors(self.run.file(STATE), tensors, self.state.meta())

    def load_checkpoint(self) -> None:
        """Every rank restores the model, optimiser and random states; rank 0 also the weight average,
        and it alone cuts metrics.jsonl (and diagnostics) back to the checkpoint."""
        path = self.run.file(STATE)
        tensors, meta = read_state(path, tensor_bytes(self.model))
        load_state(self.model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, path)
        restore_optimizer(self.optimizer, tensors, path)
        if self.scaler and "scaler" in tensors:
            self.scaler.load_state_dict(loaded_bytes(tensors["scaler"], path, "gradient scaler state"))
        self.generator.set_state(tensors["rng.batches"])
        self.restore_torch_rng(tensors, meta["step"])
        self.state = TrainState(meta["step"], meta["elapsed"], meta["best_val"], tensors[STEP_LOSS], meta["average_updates"],
                                meta.get("eval_seconds", 0.0))
        if self.average:
            load_state(self.average.averaged, {k[8:]: v for k, v in tensors.items() if k.startswith("average.")}, path)
            self.average.updates = self.state.average_updates
        self.last_checkpoint = self.state.step
        if self.ranks.main:
            self.run.truncate_metrics(self.state.step)
        if self.diagnostics:
            self.diagnostics.truncate(self.state.step)

    def restore_torch_rng(self, tensors: dict[str, torch.Tensor], step: int) -> None:
        """The random stream dropout draws from: rank 0's is the one-process one; another rank's is
        its own as saved, or, when the run was saved by fewer ranks, a fresh one of its own."""
        rank, saved = self.ranks.rank, tensors.get(RANK_RNG)
        if rank == 0:
            torch.set_rng_state(tensors["rng.torch"])
        elif saved is not None and rank < len(saved) and saved.dim() == 2:
            torch.set_rng_state(saved[rank].clone())  # a row of `saved` (a view at an offset) crashes torch 2.13
        else:
            torch.manual_seed(self.tc.seed + rank + step)

    def finish(self, interrupted: bool, diverged: bool = False) -> TrainResult:
        """Reload the best model by val NLL, evaluate it on every split, write summary.json (rank 0;
        the other ranks get its figures)."""
        if self.board:
            self.board.close()
        final = self.ranks.on_main(lambda: self.final_evaluation(interrupted, diverged))
        return TrainResult(self.run.path, self.state.step, self.state.elapsed, final, interrupted)

    def final_evaluation(self, interrupted: bool, diverged: bool) -> dict[str, EvalResult]:
        if not self.run.file(MODEL).exists():  # Ctrl-C before the first evaluation: keep what there is
            self.run.save_model(self.kept)
        self.run.load_weights(self.model)
        labels = self.data.split_labels or {}
        final = {s: evaluate(self.model, self.data.packed(s).to(self.device), s, labels.get(s)) for s in SPLIT_NAMES}
        write_json(self.run.file(SUMMARY), {"step": self.state.step, "seconds": round(self.state.elapsed, 2), "interrupted": interrupted,
                                            "diverged": diverged, "threads": torch.get_num_threads(),
                                            "processes": self.ranks.world, **{s: r.to_dict() for s, r in final.items()}})
        return final

