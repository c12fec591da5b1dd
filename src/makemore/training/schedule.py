"""When training evaluates and checkpoints: every `eval_every` steps, or, under a time budget with no
--eval-interval, by the clock, so that keeping the best model by val NLL works at any budget (a
45-s run of a model whose eval_every was max_steps/20 was once evaluated only at its end)."""

from __future__ import annotations

from ..config import TrainConfig

SHARE = 0.05  # of the time budget between two evaluations at most: about 20 over the run, or more when they are cheap,
CHEAP = 0.05  # as often as costs this share of the time (but never more often than every MIN_GAP seconds):
MIN_GAP = 1.0  # on 249 country names a gru had overfit by its first evaluation 15 s into a 300-s budget (test 3.18)
MOST_EVALUATING = 0.2  # and at most this share of the time spent evaluating, however long one takes
# past evaluate.SAMPLE_CHARS, a split's sample is sized under a time budget for one checkpoint (train and
# val) to take about this share of it, measured on PROBE_CHARS first, and holds MIN_SAMPLE_CHARS at least
EVAL_SHARE_EACH = 0.02
PROBE_CHARS = 4_000
MIN_SAMPLE_CHARS = 20_000


class EvalSchedule:
    def __init__(self, tc: TrainConfig, elapsed: float = 0.0):
        self.tc = tc
        self.by_time = tc.time_budget is not None and tc.eval_interval is None
        self.gap = tc.time_budget * SHARE if self.by_time else None
        self.next_at = elapsed + self.gap if self.by_time else None
        self.last_seconds = 0.0  # the last evaluation's: a time budget keeps as much for the one after the last step

    def due(self, step: int, elapsed: float, ranks) -> bool:
        """Whether to evaluate after this step; by the clock, rank 0's answer is every rank's."""
        if not self.by_time:
            return step % self.tc.eval_every == 0
        due = elapsed >= self.next_at
        return ranks.any_of(due and ranks.main)[0] if ranks.distributed else due

    def evaluated(self, elapsed: float, seconds: float) -> None:
        """An evaluation ended at `elapsed`, taking `seconds`: the next one comes a gap later, shorter
        when evaluating is cheap (CHEAP of the time, MIN_GAP at least), longer when evaluating would
        otherwise take more than MOST_EVALUATING of the time."""
        self.last_seconds = seconds
        if self.by_time:
            often = min(self.gap, max(MIN_GAP, seconds * (1 - CHEAP) / CHEAP))
            self.next_at = elapsed + max(often, seconds * (1 - MOST_EVALUATING) / MOST_EVALUATING)
