"""What a person watching a run sees: the progress bar and the log lines, both subscribers of
the run's events."""

from __future__ import annotations

import math
from pathlib import Path

from tqdm.auto import tqdm

from .events import Diverged, Evaluated, Evaluating, Event, Finished, Started, Step

BAR_EVERY = 50  # steps between the progress bar's loss readings (each a device sync)


class ProgressBar:
    """tqdm over whichever limit ends the run: steps toward --max-steps, or, with --time-budget,
    seconds toward the budget (moved on by steps too, when max_steps would come first), with a
    smoothed training loss, the best val NLL and the characters per second; while the kept model
    is being evaluated, it says so, and which split."""

    def __init__(self):
        self.bar, self.smooth_loss, self.best_val = None, None, math.inf
        self.started: Started | None = None
        self.figures: dict[str, str] = {}
        self.val_note = ""

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started):
            self.started, self.best_val = event, event.best_val
        elif isinstance(event, Step):
            self.stepped(event)
        elif isinstance(event, Evaluating):
            self.evaluating(event)
        elif isinstance(event, Evaluated):
            self.best_val = min(self.best_val, event.val_loss)
            if "val" in event.sampled:  # past SAMPLE_CHARS: what the figure is over
                self.val_note = f" (a sample of {event.sampled['val']['chars']:,} chars)"
            self.show()
        elif isinstance(event, (Diverged, Finished)):
            if isinstance(event, Finished) and not (event.interrupted or event.diverged) and self.bar is not None:
                self.bar.update(self.bar.total - self.bar.n)  # the limit that ended it is reached: 100%
            self.show()  # the run's figures, not the last split evaluated, stay on the screen
            self.close()

    def open(self) -> None:
        s = self.started
        if s.time_budget is None:
            self.bar = tqdm(total=s.max_steps, initial=s.step, unit="step", dynamic_ncols=True)
        else:  # seconds, shown whole: the budget's own unit
            self.bar = tqdm(total=s.time_budget, initial=self.done(s.step, s.elapsed), unit="s", dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]")

    def done(self, step: int, elapsed: float) -> float:
        """How far the run is, in the bar's unit: steps, or seconds of the budget (where max_steps
        would end it sooner, the share of steps done counts instead)."""
        s = self.started
        if s.time_budget is None:
            return step
        return min(s.time_budget, max(elapsed, s.time_budget * step / max(1, s.max_steps)))

    def stepped(self, event: Step) -> None:
        if self.bar is None:  # a counted model takes no steps, and shows no bar
            self.open()
        self.bar.update(self.done(event.step, event.elapsed) - self.bar.n)
        if event.step % BAR_EVERY == 0 or event.step == self.started.max_steps:
            value = event.loss
            self.smooth_loss = value if self.smooth_loss is None else 0.9 * self.smooth_loss + 0.1 * value
            self.figures = {"step": f"{event.step:,}", "loss": f"{self.smooth_loss:.4f}",
                            "best_val": f"{self.best_val:.4f}{self.val_note}", "chars_s": f"{event.chars_per_sec:,.0f}"}
            self.show(refresh=False)

    def evaluating(self, event: Evaluating) -> None:
        if self.bar is not None:
            what = "final evaluation" if event.final else "evaluating"
            self.bar.set_postfix_str(f"{what}: {event.split} split…", refresh=True)

    def show(self, refresh: bool = True) -> None:
        if self.bar is not None:
            best = {"best_val": f"{self.best_val:.4f}{self.val_note}"} if self.figures else {}
            self.bar.set_postfix(self.figures | best, refresh=refresh)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


STALLED = 5  # evaluations without a better val NLL before the log says so


class Plateau:
    """The best val NLL heard so far, the step it came at, and the evaluations since without a better one."""

    def __init__(self, best: float = math.inf, step: int = 0):
        self.best, self.best_step, self.since = best, step, 0

    def heard(self, event: Evaluated) -> None:
        if event.val_loss < self.best:
            self.best, self.best_step, self.since = event.val_loss, event.step, 0
        else:
            self.since += 1


class LogLines:
    """The lines `log` gets: where a resumed run starts, when val NLL has stopped improving (once),
    and where an interrupted run stopped."""

    def __init__(self, log, run_path: Path):
        self.log, self.run_path = log, run_path
        self.plateau, self.said = Plateau(), False

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started):
            self.plateau = Plateau(event.best_val, event.step)
            if event.resumed:
                self.log(f"resuming {self.run_path} at step {event.step}")
        elif isinstance(event, Evaluated):
            self.evaluated(event)
        elif isinstance(event, Finished) and event.interrupted:
            sampled = [s for s, r in event.final.items() if r.sample is not None]
            note = (f" (its {', '.join(sampled)} figures over a seeded sample of the split, to stop at once; `makemore eval "
                    f"{self.run_path}` measures every item)") if sampled else ""
            self.log(f"interrupted at step {event.step}; the best model so far is kept in {self.run_path}{note}")

    def evaluated(self, event: Evaluated) -> None:
        plateau = self.plateau
        plateau.heard(event)
        if plateau.since == STALLED and not self.said:
            self.said = True
            self.log(f"val NLL has not improved in {STALLED} evaluations, since step {plateau.best_step:,} ({plateau.best:.4f}), "
                     "the model kept; more steps are unlikely to help: --dropout or a smaller model may")
