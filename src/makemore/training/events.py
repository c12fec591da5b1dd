"""What a training run reports as it goes: one small dataclass per kind of event, each with the
step it happened at. The loop emits them; the progress bar, the log lines, metrics.jsonl,
TensorBoard and a caller's `on_event` hear them (`Events`), and none of them is called from
inside the loop.

A subscriber may call `event.stop()` to end the run after this step, as Ctrl-C does: the best
model is kept, the last checkpoint stays for --resume and summary.json says interrupted; or
`event.end()`, to end it as a spent budget does, not interrupted. A
caller's `on_event` that raises ends the run the same way, and its exception is raised again
once the run directory is whole (`Events.failure`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import torch

from ..config import ModelConfig
from ..evaluate import EvalResult


@dataclass
class Event:
    step: int  # steps done when it happened
    kind: ClassVar[str] = "event"

    def stop(self) -> None:
        """End the run after this step, keeping the best model, as Ctrl-C does."""
        stopper = getattr(self, "_stopper", None)
        if stopper is not None:
            stopper()

    def end(self) -> None:
        """End the run before its next step as a spent budget does: not interrupted, the model after
        the last step evaluated, the final figures over whole splits (auto, when val NLL has stalled)."""
        ender = getattr(self, "_ender", None)
        if ender is not None:
            ender()


@dataclass
class Started(Event):
    max_steps: int
    resumed: bool
    best_val: float  # of the run so far: inf for a new one
    time_budget: float | None = None  # seconds (--time-budget), whichever of it and max_steps comes first ends the run
    elapsed: float = 0.0  # seconds the run has trained so far (a resumed run's earlier ones)
    kind: ClassVar[str] = "started"


@dataclass
class Fitted(Event):
    """A model fitted in closed form (counted: no steps), with the config the fit settled on (the
    ngram's order and table sizes) and what it chose on val, for config.json's "choice", or None."""
    model_config: ModelConfig
    params: int
    choice: dict | None
    kind: ClassVar[str] = "fitted"


@dataclass
class Step(Event):
    """One optimiser step done. Its loss stays on the device until asked for: reading it is a
    device sync, which the loop itself never makes per step."""
    lr: float
    loss_tensor: torch.Tensor = field(repr=False)
    chars_per_sec: float  # the last measured rate (the loop measures it every 50 steps)
    elapsed: float = 0.0  # seconds of the run when the step began, the evaluations during it included
    kind: ClassVar[str] = "step"

    @property
    def loss(self) -> float:
        """This step's training loss: this process's share of the batch under torchrun."""
        return self.loss_tensor.item()


@dataclass
class Evaluating(Event):
    """An evaluation of the kept model on one split is starting: during training on train and val
    (every eval_every steps), and at the end, `final`, on every split. On a large list it takes a
    while, and the progress bar says so."""
    split: str
    final: bool
    kind: ClassVar[str] = "evaluating"


@dataclass
class Evaluated(Event):
    """The exact train and val NLL of the kept model, each over the whole split or, past
    evaluate.SAMPLE_CHARS, over its seeded sample (`sampled`): a line of metrics.jsonl (`record`)."""
    train_loss: float
    val_loss: float
    lr: float
    chars_per_sec: float
    elapsed: float
    train_seconds: float
    step_losses: torch.Tensor = field(repr=False)  # the loss of each step since the last evaluation, on the host
    sampled: dict = field(default_factory=dict)  # split -> the seeded sample it was measured on (evaluate.sample_split)
    kind: ClassVar[str] = "evaluated"

    def record(self) -> dict:
        """metrics.jsonl's line; a split measured on a sample says so ("sampled"), one measured whole says nothing."""
        return {"step": self.step, "train_loss": self.train_loss, "val_loss": self.val_loss, "lr": self.lr,
                "chars_per_sec": self.chars_per_sec, "elapsed": self.elapsed, "train_seconds": self.train_seconds,
                **({"sampled": self.sampled} if self.sampled else {})}


@dataclass
class Checkpointed(Event):
    path: Path  # state.safetensors, which --resume starts from
    kind: ClassVar[str] = "checkpointed"


@dataclass
class Diverged(Event):
    reason: str
    kind: ClassVar[str] = "diverged"


@dataclass
class Finished(Event):
    seconds: float
    final: dict[str, EvalResult]  # the kept model on every split
    interrupted: bool
    diverged: bool
    final_seconds: float = 0.0  # the final evaluation's, after `seconds` of training
    kind: ClassVar[str] = "finished"


class Events:
    """The subscribers of one run, called in order with each event. Under torchrun only rank 0
    has any: the others train without reporting."""

    def __init__(self, subscribers: list[Callable[[Event], None]], on_event: Callable[[Event], None] | None = None):
        self.subscribers = list(subscribers)
        self.on_event = on_event
        self.stop_requested = False
        self.end_requested = False  # event.end(): the run ends as if its budget were spent
        self.failure: Exception | None = None  # what on_event raised, raised again when the run has ended cleanly

    def request_stop(self) -> None:
        self.stop_requested = True

    def request_end(self) -> None:
        self.end_requested = True

    def emit(self, event: Event) -> None:
        event._stopper, event._ender = self.request_stop, self.request_end
        for subscriber in self.subscribers:
            subscriber(event)
        if self.on_event is not None and self.failure is None:
            try:
                self.on_event(event)
            except Exception as e:  # noqa: BLE001 - the caller's; it ends the run cleanly, then is raised again
                self.failure = e
                self.stop_requested = True

    def close(self) -> None:
        """Let each subscriber that holds something open (the progress bar, TensorBoard) close it."""
        for subscriber in self.subscribers:
            close = getattr(subscriber, "close", None)
            if close is not None:
                close()
