"""The training loop, top to bottom: learning rate, batch, loss, backward, step, weight average,
and every `eval_every` steps an exact evaluation and a checkpoint. What happens is reported as
events (events.py); the run directory is written by their Recorder. Models fitted in closed form
(the bigram counts) skip the loop. Under torchrun each process runs a Training on its share of
every batch, and rank 0 alone evaluates, reports and writes (distributed.py)."""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import deadline, signals
from ..store import MODEL, STATE, RunDir
from ..config import TrainConfig
from ..data import IGNORE, Dataset
from ..device import cpu_threads
from ..diagnostics import DEFAULT_INTERVAL, Diagnostics
from ..distributed import Ranks
from ..errors import Diverged
from ..evaluate import EvalResult
from ..models import CharModel
from . import events as ev
from . import state
from .recorder import Recorder, evaluate_splits
from .samples import EvalSets
from .schedule import EvalSchedule
from .report import LogLines, ProgressBar
from .update import WeightAverage, autocast, loss_function, make_optimizer, set_learning_rate

DIVERGENCE_CHECK = 10  # steps between looks at whether the loss is still finite (one device sync each)
THROUGHPUT_EVERY = 50  # steps between readings of the characters trained on (one device sync each)


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    seconds: float
    final: dict[str, EvalResult]
    interrupted: bool = False
    final_seconds: float = 0.0  # the final evaluation's, after the training seconds
    choice: dict | None = None  # --model auto's: the model it kept and why (config.json's "choice"["model"])


def train_into(run: RunDir, model: CharModel, data: Dataset, tc: TrainConfig, ranks: Ranks, quiet: bool, log,
               on_event=None, resume: bool = False) -> TrainResult:
    """Train `model` into `run` (from its checkpoint when `resume`), reporting to the progress
    bar, the log, the run directory and `on_event`; this process's threads are as they were after."""
    training = Training(run, model, data, tc, ranks)
    subscribers = []
    if ranks.main:
        training.recorder = Recorder(run, training, tc.tensorboard)
        subscribers = [training.recorder, LogLines(log, run.path)] + ([] if quiet else [ProgressBar()])
    training.events = ev.Events(subscribers, on_event if ranks.main else None)
    before = torch.get_num_threads()
    if ranks.device.type == "cpu":
        torch.set_num_threads(cpu_threads(tc.threads)[0])
    try:
        # several ranks stop on a signal together, at a step they agree on (stop_here), not each where it is
        with signals.deferred() if ranks.distributed else nullcontext():
            result = training.perform(resume)
    finally:
        training.events.close()
        torch.set_num_threads(before)  # the caller's process is as it was
    if training.events.failure is not None:  # on_event raised: the run ended as an interrupt, and now says why
        raise training.events.failure
    return result


class Training:
    """Model, optimiser, batches and the run's Progress: one rank's part of training a run."""

    def __init__(self, run: RunDir, model: CharModel, data: Dataset, tc: TrainConfig, ranks: Ranks):
        self.run, self.model, self.data, self.tc, self.ranks, self.device = run, model, data, tc, ranks, ranks.device
        main = ranks.main
        self.evals = EvalSets(data, self.device) if main else None  # what each checkpoint evaluates (rank 0)
        self.progress = state.Progress(lr=tc.lr, finite=torch.ones((), dtype=torch.bool, device=self.device))
        watched = tc.diagnostics and main
        self.diagnostics = Diagnostics(model, run, tc.diagnostics_interval or DEFAULT_INTERVAL) if watched else None
        self.average = WeightAverage(model, tc.ema) if tc.ema and main else None  # all ranks hold the same weights
        self.scaler = torch.amp.GradScaler(self.device.type) if tc.dtype == "fp16" else None  # fp16 gradients would underflow
        if not model.closed_form:
            self.generator = torch.Generator().manual_seed(tc.seed)
            self.batches = model.batches(data.packed("train"), tc.batch_size, self.generator, self.device)
            self.optimizer = make_optimizer(model, tc)
        self.recorder: Recorder | None = None  # rank 0's
        self.events = ev.Events([])

    @property
    def kept(self) -> CharModel:
        """The model that is evaluated and saved: the weight average when there is one."""
        return self.average.model if self.average else self.model

    def perform(self, resume: bool) -> TrainResult:
        interrupted = False
        if resume:
            state.load(self.run.file(STATE), self)
            if self.recorder:
                self.recorder.rewind(self.progress.step)
            if self.diagnostics:
                self.diagnostics.truncate(self.progress.step)
        p = self.progress
        self.events.emit(ev.Started(p.step, self.tc.max_steps, resume, p.best_val, self.tc.time_budget, p.elapsed))
        if self.model.closed_form:
            self.fit_closed_form()
            return self.finish(interrupted)
        self.loss_of = loss_function(self.model, self.tc, self.ranks)
        try:
            self.loop()
        except KeyboardInterrupt:
            interrupted = True
        except Diverged as e:
            raise self.diverged(str(e)) from None
        return self.finish(interrupted)

    def fit_closed_form(self) -> None:
        model, began = self.model, time.perf_counter()
        choice = model.fit(self.data.packed("train").to(self.device), self.data.packed("val").to(self.device))
        self.progress.lr, self.progress.elapsed = 0.0, time.perf_counter() - began  # the seconds the counting took
        self.ranks.on_main(lambda: self.events.emit(ev.Fitted(0, model.config, model.num_params(), choice)))
        # with no smoothing an unseen pair makes the NLL inf: a result, not a failure
        self.ranks.on_main(lambda: self.events.emit(self.evaluate()))

    def loop(self) -> None:
        """Train until max_steps or the time budget, evaluating and checkpointing every eval_every steps."""
        model, tc, p = self.model, self.tc, self.progress
        model.train()
        start = time.perf_counter() - p.elapsed
        self.schedule = EvalSchedule(tc, p.elapsed)
        if self.evals is not None and self.evals.sampled and tc.time_budget is not None:
            self.evals.fit_to_budget(self.kept, tc.time_budget)
        chars, window_start = 0, time.perf_counter()
        while p.step < tc.max_steps:
            p.elapsed = time.perf_counter() - start
            if self.stop_here():
                break
            p.lr = set_learning_rate(self.optimizer, tc, p.step, p.elapsed)
            dropping = p.step >= tc.dropout_from  # --dropout-from: none before that step
            if model.dropping != dropping:
                model.set_dropout(dropping)
            batch, share, batch_chars = next_batch(self.batches, self.ranks)
            with self.watch():
                loss = self.update(batch, share).detach()
            if self.average:
                self.average.update(model)
            p.pending.append(loss if share is None else loss * share)
            p.finite &= torch.isfinite(loss)
            p.step += 1
            if p.step % DIVERGENCE_CHECK == 0 and not self.ranks.all(p.finite):
                raise Diverged("the training loss is no longer a finite number")
            chars += batch_chars  # a tensor: read back only now and then, no per-step GPU sync
            if p.step % THROUGHPUT_EVERY == 0 or p.step == tc.max_steps:
                now = time.perf_counter()
                p.chars_per_sec, chars, window_start = int(chars) / max(now - window_start, 1e-9), 0, now
            self.events.emit(ev.Step(p.step, p.lr, loss, p.chars_per_sec, p.elapsed))
            if self.schedule.due(p.step, time.perf_counter() - start, self.ranks):
                p.elapsed = time.perf_counter() - start
                self.checkpoint()
                self.schedule.evaluated(time.perf_counter() - start, time.perf_counter() - start - p.elapsed)
                chars, window_start = 0, time.perf_counter()  # throughput leaves evaluation time out
                model.train()
        p.elapsed = time.perf_counter() - start
        if p.last_checkpoint != p.step:
            self.checkpoint()
            p.elapsed = time.perf_counter() - start  # the run's seconds hold its last evaluation, as the budget does

    def stop_here(self) -> bool:
        """Whether to stop before this step: the budget is spent but for the checkpoint after it (expected to take as
        long as the last), or event.end() (True); or a stop was asked for (KeyboardInterrupt, so that `event.stop()`
        ends the run exactly as Ctrl-C does). With several ranks, rank 0's clock and subscribers decide, so that every
        rank stops at the same step; and a signal to any rank (noted by signals.deferred) interrupts every rank here,
        where none is waiting on another."""
        budget, elapsed = self.tc.time_budget, self.progress.elapsed + self.schedule.last_seconds
        out_of_time = (budget is not None and elapsed >= budget) or self.events.end_requested
        stop = self.events.stop_requested
        if self.ranks.distributed:
            out_of_time, signalled, stop = self.ranks.any_of(out_of_time and self.ranks.main,
                                                             signals.requested is not None, stop)
            if signalled:
                signals.act_on_request()
                raise KeyboardInterrupt  # another rank was signalled
        if stop:
            raise KeyboardInterrupt
        return out_of_time

    def update(self, batch, share: torch.Tensor | None) -> torch.Tensor:
        """One optimiser step on `batch`; returns its loss, the mean over its predicted characters.
        With several ranks, each weights its loss by its share of the batch's characters times the
        number of ranks: DDP's average of the ranks' gradients is then the gradient of the mean over
        the whole batch, as one process would compute it, however unevenly the characters fall."""
        opt = self.optimizer
        with autocast(self.tc, self.device):
            loss = self.loss_of(batch)
        opt.zero_grad(set_to_none=True)
        objective = (loss if share is None else loss * (share * self.ranks.world)) + self.model.penalty()
        if self.scaler:  # fp16: scale the loss up so small gradients survive, and skip steps that overflow
            self.scaler.scale(objective).backward()
            self.scaler.step(opt)
            self.scaler.update()
        else:
            objective.backward()
            opt.step()
        return loss

    def watch(self):
        """Diagnostics of this step's forward, backward and update when one is due; else nothing."""
        if self.diagnostics is None or not self.diagnostics.due(self.progress.step):
            return nullcontext()
        return self.diagnostics.watch(self.progress.step, self.progress.lr)

    def checkpoint(self) -> None:
        """Evaluate, keep the model if it is the best, and save the state --resume starts from;
        a diverged model is never checkpointed, so the last checkpoint stays a finite one. With
        several ranks, rank 0 does this while the others wait; they exchange what it needs first:
        each step's loss over the whole batch (the sum of the ranks' shares) and their random states."""
        p = self.progress
        if not self.ranks.all(p.finite):
            raise Diverged("the training loss is no longer a finite number")
        began = time.perf_counter()
        if self.ranks.distributed and p.pending:
            total = self.ranks.total(torch.stack(p.pending))
            p.pending = list(total) if self.ranks.main else []
        rngs = self.ranks.gather(torch.get_rng_state()) if self.ranks.distributed else None  # each rank's dropout stream
        # a stop asked for (the page's, event.stop()) ends an evaluation within a chunk, as Ctrl-C does; several ranks
        # stop together at a step instead (stop_here), rank 0 never alone while the others wait on it
        with deadline.stop_when(lambda: self.events.stop_requested) if not self.ranks.distributed else nullcontext():
            self.ranks.on_main(lambda: self.evaluate_and_save(rngs))
        p.last_checkpoint = p.step
        p.eval_seconds += time.perf_counter() - began  # metrics' train_seconds leave it out

    def evaluate_and_save(self, rngs: list[torch.Tensor] | None) -> None:
        p, evaluated = self.progress, self.evaluate()
        for split in ("train", "val"):
            if not math.isfinite(getattr(evaluated, f"{split}_loss")):
                raise Diverged(f"the {split} NLL is {getattr(evaluated, f'{split}_loss')}")
        if p.pending:  # off the device: one copy per checkpoint, not a sync every step
            evaluated.step_losses = torch.stack(p.pending).float().cpu()
            p.step_losses, p.pending = torch.cat([p.step_losses, evaluated.step_losses]), []
        self.events.emit(evaluated)
        self.recorder.checkpoint(rngs)
        self.events.emit(ev.Checkpointed(p.step, self.run.file(STATE)))

    def evaluate(self) -> ev.Evaluated:
        """The kept model's exact train and val NLL (each split whole, or its sample), with the figures metrics.jsonl records."""
        p = self.progress
        nll = {s: r.nll for s, r in evaluate_splits(self.kept, self.evals.sets, self.events, p.step, final=False).items()}
        return ev.Evaluated(p.step, nll["train"], nll["val"], p.lr, round(p.chars_per_sec, 1), round(p.elapsed, 3),
                            round(p.elapsed - p.eval_seconds, 3), torch.empty(0),
                            self.evals.notes())

    def diverged(self, what: str) -> Diverged:
        """Keep the best finite model (never the diverged one) and say what happened and what to try.
        The last checkpoint, from before the divergence, stays as it was."""
        p, tc = self.progress, self.tc
        self.events.emit(ev.Diverged(p.step, what))
        advice = f"try a lower --lr than {tc.lr:g}" + (" or a longer --warmup-steps" if tc.optimizer == "adamw" else "")
        if not self.ranks.on_main(lambda: self.run.file(MODEL).exists()):
            return Diverged(f"training diverged at step {p.step} ({what}) before any model was worth keeping; {advice}")
        self.finish(interrupted=False, diverged=True)
        return Diverged(f"training diverged at step {p.step} ({what}); the best model before it, val NLL "
                        f"{p.best_val:.4g}, is kept in {self.run.path}; {advice}")

    def finish(self, interrupted: bool, diverged: bool = False) -> TrainResult:
        """The best model on every split, in summary.json (rank 0; the other ranks get its figures)."""
        p = self.progress
        final = self.ranks.on_main(lambda: self.recorder.summarise(interrupted, diverged))
        final_seconds = self.recorder.final_seconds if self.recorder else 0.0
        self.events.emit(ev.Finished(p.step, p.elapsed, final, interrupted, diverged, final_seconds))
        return TrainResult(self.run.path, p.step, p.elapsed, final, interrupted, final_seconds)


def next_batch(batches, ranks: Ranks):
    """This step's batch, this rank's share of its predicted characters and their number. One
    process trains on the whole batch (share None). Several each draw the same batch from the
    same generator and take their own rows of it."""
    if not ranks.distributed:
        batch = batches()
        return batch, None, (batch.y != IGNORE).sum()
    idx = batches.draw()
    batch = batches.take(idx[ranks.share(len(idx))])
    mine = (batch.y != IGNORE).sum()
    chars = ranks.total(mine)
    return batch, mine / chars, chars
