"""Training from the page: a list checked in memory, then trained on a worker thread, one job at a
time, into an ordinary run directory under --runs (the CLI can sample, eval and --resume it).

A job is queued, then running, then done, failed or cancelled. Its list is checked before anything
is written, with the CLI's messages; then RUNS/NAME/items.txt is written and `makemore.train` runs
on it into RUNS/NAME, its events kept for GET /api/jobs/<id> and its stream. A job stopped
(DELETE, or the server stopping) ends as Ctrl-C ends a training: the best model kept, the last
checkpoint left for --resume. A finished job's model is served at once under its name.
"""

from __future__ import annotations

import re
import secrets
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ..api import load
from ..config import DEFAULT_ITEM_LENGTH
from ..data import BOM, LABEL_SEPARATOR, MIN_ITEMS, Vocabulary, check_vocabulary, split_labels
from ..errors import MakemoreError
from ..models import AUTO, REGISTRY, get_spec
from ..store import LOCK, MODEL, RunDir
from ..store.files import atomic_write
from .bodies import ApiError, TrainRequest
from .limits import Limits

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DATA_FILE = "items.txt"  # the list, inside its run directory: config.json's data source
ENDED = ("done", "failed", "cancelled")
STEP_EVERY = 0.5  # seconds between the step events a job keeps (every evaluation is kept)
DEFAULT_BUDGET = 120.0  # seconds a job trains when it asks for no time budget (or the server's limit, if lower)
KEPT_JOBS = 100  # ended jobs remembered, oldest forgotten first
SAMPLES = 6  # items drawn from the best model at each evaluation, for the page
SAMPLES_COST = 0.2  # seconds: past this, a job draws no more of them


def check_list(req: TrainRequest, limits: Limits) -> list[str]:
    """The request's items (with their labels, as item<TAB>label) as the lines of the file training
    reads, or one line saying what is wrong, before anything is written: what `makemore train`
    refuses in a file, worded as it words it."""
    items = req.items
    if len(items) > limits.train_items:
        raise ApiError(413, f"the list has {len(items):,} items; this server trains on at most {limits.train_items:,} "
                            "(--train-items); send fewer")
    if req.labels is not None:
        if len(req.labels) != len(items):
            raise ApiError(422, f"labels has {len(req.labels):,} entries for {len(items):,} items; give one label per "
                                "item, in the same order")
        for k, (item, label) in enumerate(zip(items, req.labels), 1):
            if LABEL_SEPARATOR in item or LABEL_SEPARATOR in label:
                raise ApiError(422, f"item {k:,} holds a TAB; with labels given apart, items and labels hold none")
        items = [f"{item}{LABEL_SEPARATOR}{label}" for item, label in zip(items, req.labels)]
    for k, line in enumerate(items, 1):
        if "\n" in line or "\r" in line:
            raise ApiError(422, f"item {k:,} holds a line break; give one item per entry of items")
        if "\0" in line:
            raise ApiError(422, f"item {k:,} holds a NUL character: the list looks like binary data; send text, one item per line")
        if BOM in line:
            raise ApiError(422, f"item {k:,} holds a byte-order mark (U+FEFF), invisible, which would be a character "
                                "of its item; delete it")
        if len(line.strip()) > DEFAULT_ITEM_LENGTH:
            raise ApiError(422, f"item {k:,} has {len(line.strip()):,} characters; the limit is {DEFAULT_ITEM_LENGTH:,}; "
                                "split or drop it")
    numbered = [(k, line.strip()) for k, line in enumerate(items, 1) if line.strip()]
    if not numbered:
        raise ApiError(422, "the list has no items (it is empty or only blank lines); put one item per line")
    found, labels = split_labels([line for _, line in numbered], [k for k, _ in numbered], "the list")
    if len(found) < MIN_ITEMS:
        raise ApiError(422, f"the list has {len(found)} items; a train/val/test split needs at least {MIN_ITEMS}")
    check_vocabulary(Vocabulary.from_items(found, labels), "the list")
    return [line for _, line in numbered]


def check_model(name: str | None) -> None:
    """A model `makemore train` knows, or auto (None: its default)."""
    if name is not None and name != AUTO:
        get_spec(name)


def train_options(model: str | None, budget: float, threads: int) -> dict:
    """The options a job trains with: its time budget, except for a model fitted by counting (which
    takes no steps, and so no budget), and the threads the server gives training."""
    spec = REGISTRY.get(model) if model is not None else None
    closed_form = spec is not None and spec.closed_form
    return {"threads": threads} | ({} if closed_form else {"time_budget": budget})


@dataclass
class Job:
    id: str
    name: str
    model: str | None
    time_budget: float
    lines: list[str] | None = field(default=None, repr=False)  # the list, until it is written
    state: str = "queued"
    step: int = 0
    seconds: float = 0.0
    train_nll: float | None = None
    val_nll: float | None = None
    served: str | None = None  # the model's name in /api/models, once there is one
    error: str | None = None
    run_dir: str | None = None
    events: list[dict] = field(default_factory=list, repr=False)
    stop_asked: bool = False
    sample_seconds: float = 0.0  # what drawing the last samples took
    last_step_event: float = 0.0

    def view(self, position: int | None = None) -> dict:
        out = {"job": self.id, "name": self.name, "state": self.state, "step": self.step, "seconds": round(self.seconds, 2),
               "time_budget": self.time_budget, "train_nll": self.train_nll, "val_nll": self.val_nll,
               "model": self.served, "error": self.error}
        return out | ({"position": position} if position is not None else {})


class Jobs:
    """The jobs of one server: at most one training at a time on a worker thread, the others queued
    (at most limits.queued_jobs of them). Everything here is guarded by `lock`: requests read jobs
    from the event loop while the worker changes them."""

    def __init__(self, runs_dir: Path | None, limits: Limits, add_model):
        self.runs_dir, self.limits, self.add_model = runs_dir, limits, add_model
        self.lock = threading.Lock()
        self.jobs: dict[str, Job] = {}
        self.queue: deque[Job] = deque()
        self.current: Job | None = None
        self.worker: threading.Thread | None = None
        self.closing = False

    # ---- what requests ask -------------------------------------------------------------------

    def submit(self, req: TrainRequest, taken) -> Job:
        """Check the request and queue its job; `taken(name)` says whether a served model has that name."""
        if self.runs_dir is None:
            raise ApiError(403, "this server has no --runs directory to train into, so it does not train; "
                                "start it with --runs DIR (and, beyond this machine, --allow-training)")
        if not self.limits.training:
            raise ApiError(403, "training from the page is off on this server (it listens beyond this machine); "
                                "start it with --allow-training to allow it")
        if not NAME.fullmatch(req.name):
            raise ApiError(422, f"name {req.name[:80]!r} cannot name a model: use 1 to 64 letters, digits, '-', '_' "
                                "and '.', starting with a letter or digit")
        check_model(req.model)
        budget = min(DEFAULT_BUDGET, self.limits.train_seconds) if req.time_budget is None else req.time_budget
        if not (0 < budget <= self.limits.train_seconds):
            raise ApiError(422, f"time_budget must be above 0 and at most {self.limits.train_seconds:g} seconds, "
                                f"this server's limit (got {budget:g})")
        lines = check_list(req, self.limits)
        with self.lock:
            if self.closing:
                raise ApiError(503, "the server is stopping; start the job again once it is back")
            waiting = len(self.queue)
            if waiting >= self.limits.queued_jobs:
                raise ApiError(409, f"{waiting} jobs are already waiting behind the one training, this server's limit "
                                    "(--queued-jobs); wait for one to end")
            busy = {j.name for j in self.queue} | ({self.current.name} if self.current else set())
            if taken(req.name) or req.name in busy or (self.runs_dir / req.name).exists() or (self.runs_dir / req.name).is_symlink():
                raise ApiError(409, f"a model named {req.name!r} already exists (or is being trained); choose another name")
            job = Job(secrets.token_hex(8), req.name, req.model, budget, lines)
            self.jobs[job.id] = job
            self.queue.append(job)
            self.forget_old()
            if self.worker is None or not self.worker.is_alive():
                self.worker = threading.Thread(target=self.work, name="makemore-training", daemon=True)
                self.worker.start()
            self.note(job, "queued")
            return job

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id[:40]!r}; POST /api/train starts one")
        return job

    def view(self, job: Job) -> dict:
        with self.lock:
            return job.view(self.position(job))

    def position(self, job: Job) -> int | None:
        """1 for the next to run, 2 after it, ...; None for a job not waiting."""
        return self.queue.index(job) + 1 if job.state == "queued" and job in self.queue else None

    def events_since(self, job: Job, sent: int) -> tuple[list[dict], bool]:
        with self.lock:
            return job.events[sent:], job.state in ENDED

    def stop(self, job_id: str) -> Job:
        """A queued job is cancelled; a running one stops after its current step, keeping its best model."""
        with self.lock:
            job = self.get(job_id)
            if job.state == "queued":
                self.queue.remove(job)
                job.state, job.lines = "cancelled", None
                self.note(job, "cancelled")
            elif job.state == "running":
                job.stop_asked = True
            return job

    def close(self, wait: float = 60.0) -> None:
        """The server is stopping: cancel the waiting jobs and stop the running one after its step, so
        that its run directory is whole (a checkpoint --resume continues, or nothing at all)."""
        with self.lock:
            self.closing = True
            for job in self.queue:
                job.state, job.lines, job.error = "cancelled", None, "the server stopped before this job started"
                self.note(job, "cancelled")
            self.queue.clear()
            if self.current is not None:
                self.current.stop_asked = True
            worker = self.worker
        if worker is not None:
            worker.join(wait)

    # ---- the worker --------------------------------------------------------------------------

    def note(self, job: Job, kind: str, **extra) -> None:
        """Keep an event of `job` for its stream (the lock held): its state now, and what happened."""
        job.events.append({"event": kind, **job.view(self.position(job)), **extra})

    def forget_old(self) -> None:
        ended = [j for j in self.jobs.values() if j.state in ENDED]
        for job in ended[:max(0, len(ended) - KEPT_JOBS)]:
            del self.jobs[job.id]

    def work(self) -> None:
        while True:
            with self.lock:
                if not self.queue:
                    self.worker = None if self.worker is threading.current_thread() else self.worker
                    return
                job = self.current = self.queue.popleft()
                job.state = "running"
                self.note(job, "running")
            try:
                self.run(job)
            finally:
                with self.lock:
                    self.current = None

    def run(self, job: Job) -> None:
        from ..trainer import train  # imported here: serving alone never needs the training code

        run_dir = self.runs_dir / job.name
        data = run_dir / DATA_FILE
        job.run_dir = str(run_dir)
        try:
            run_dir.mkdir(parents=True)
        except OSError as e:  # a folder of that name appeared since the job was queued, or DIR is not writable
            with self.lock:
                job.state, job.lines = "failed", None
                job.error = (f"{run_dir} appeared while the job waited; train it again under another name"
                             if isinstance(e, FileExistsError) else f"cannot make {run_dir} ({e.strerror or e}); check --runs")
                self.note(job, "failed")
            return
        try:
            atomic_write(data, ("\n".join(job.lines) + "\n").encode("utf-8"))
            job.lines = None
            train(data=str(data), model=job.model, out=run_dir, quiet=True, log=lambda line: self.hear_line(job, line),
                  on_event=lambda event: self.hear(job, event),
                  **train_options(job.model, job.time_budget, self.limits.train_threads))
            outcome, error = ("cancelled" if job.stop_asked else "done"), None
        except MakemoreError as e:
            outcome, error = "failed", str(e).splitlines()[0] if str(e) else type(e).__name__
        except Exception as e:  # noqa: BLE001 - a bug, not the user's doing: the job fails, the server goes on
            outcome, error = "failed", f"internal error ({type(e).__name__}); please report it"
        if self.closing and outcome == "cancelled":
            error = f"the server stopped during training; `makemore train --resume {run_dir}` continues it"
        served = self.serve_run(run_dir)
        if served is None and not RunDir(run_dir).exists():
            discard(run_dir)  # nothing of the run was kept: no folder left holding only its list
        with self.lock:
            job.state, job.error, job.served = outcome, error, served
            self.note(job, outcome)

    def serve_run(self, run_dir: Path) -> str | None:
        """Load the run's best model, if it has one, and serve it under the job's name."""
        if not (run_dir / MODEL).exists():
            return None
        try:
            return self.add_model(run_dir.name, load(run_dir, device="cpu"))
        except MakemoreError:
            return None

    def hear(self, job: Job, event) -> None:
        """An event of the training: the job's figures, kept for its stream; a stop asked for, passed on."""
        if job.stop_asked:
            event.stop()
        if event.kind == "checkpointed":
            items = self.samples(job)
            if items:
                with self.lock:
                    self.note(job, "samples", items=items)
            return
        with self.lock:
            job.step = event.step
            if event.kind == "started":
                self.note(job, "started", max_steps=event.max_steps)
            elif event.kind == "step":
                job.seconds = event.elapsed
                now = time.monotonic()
                if now - job.last_step_event >= STEP_EVERY:
                    job.last_step_event = now
                    self.note(job, "step")
            elif event.kind == "evaluated":
                job.seconds, job.train_nll, job.val_nll = event.elapsed, figure(event.train_loss), figure(event.val_loss)
                self.note(job, "evaluated")
            elif event.kind == "finished":
                job.seconds = event.seconds
                final = {split: figure(result.nll) for split, result in event.final.items()}
                self.note(job, "finished", nll=final, interrupted=event.interrupted)
            elif event.kind in ("fitted", "diverged"):
                self.note(job, event.kind)

    def samples(self, job: Job) -> list[str] | None:
        """A few items from the best model so far, while that is cheap: the page shows them at each
        evaluation. Once drawing them takes longer than SAMPLES_COST, the job draws no more."""
        if job.sample_seconds > SAMPLES_COST:
            return None
        began = time.perf_counter()
        try:
            items = load(job.run_dir, device="cpu").sample(SAMPLES, seed=0)
        except Exception:  # noqa: BLE001 - a nicety: the training goes on without it
            items = None
        job.sample_seconds = time.perf_counter() - began
        return items

    def hear_line(self, job: Job, line: str) -> None:
        with self.lock:
            self.note(job, "log", line=str(line))


def figure(x: float) -> float | None:
    """A NLL for JSON, which has no infinity (an unsmoothed count model's unseen pair): None then."""
    return float(x) if math.isfinite(x) else None


def discard(run_dir: Path) -> None:
    """Remove what a job that kept nothing wrote: its list, the lock file, the folder."""
    for name in (DATA_FILE, LOCK):
        (run_dir / name).unlink(missing_ok=True)
    try:
        run_dir.rmdir()
    except OSError:
        pass  # something else is in it: left as it is
