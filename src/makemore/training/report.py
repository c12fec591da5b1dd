"""What a person watching a run sees: the progress bar and the log lines, both subscribers of
the run's events."""

from __future__ import annotations

import math
from pathlib import Path

from tqdm.auto import tqdm

from .events import Diverged, Evaluated, Event, Finished, Started, Step

BAR_EVERY = 50  # steps between the progress bar's loss readings (each a device sync)


class ProgressBar:
    """tqdm, with a smoothed training loss, the best val NLL and the characters per second."""

    def __init__(self):
        self.bar, self.smooth_loss, self.best_val, self.start, self.total = None, None, math.inf, 0, 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started):
            self.start, self.total, self.best_val = event.step, event.max_steps, event.best_val
        elif isinstance(event, Step):
            self.stepped(event)
        elif isinstance(event, Evaluated):
            self.best_val = min(self.best_val, event.val_loss)
        elif isinstance(event, (Diverged, Finished)):
            self.close()

    def stepped(self, event: Step) -> None:
        if self.bar is None:  # a counted model takes no steps, and shows no bar
            self.bar = tqdm(total=self.total, initial=self.start, unit="step", dynamic_ncols=True)
        self.bar.update(1)
        if event.step % BAR_EVERY == 0 or event.step == self.total:
            value = event.loss
            self.smooth_loss = value if self.smooth_loss is None else 0.9 * self.smooth_loss + 0.1 * value
            self.bar.set_postfix(loss=f"{self.smooth_loss:.4f}", best_val=f"{self.best_val:.4f}",
                                 chars_s=f"{event.chars_per_sec:,.0f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class LogLines:
    """The lines `log` gets: where a resumed run starts, and where an interrupted one stopped."""

    def __init__(self, log, run_path: Path):
        self.log, self.run_path = log, run_path

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started) and event.resumed:
            self.log(f"resuming {self.run_path} at step {event.step}")
        elif isinstance(event, Finished) and event.interrupted:
            self.log(f"interrupted at step {event.step}; the best model so far is kept in {self.run_path}")
