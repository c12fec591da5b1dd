"""What a run's checkpoints evaluate: each split whole, or, past evaluate.SAMPLE_CHARS, a fixed
seeded sample of its items (evaluate.sample_split), sized under a time budget to what one
checkpoint can evaluate in its share of it; and what the final evaluation reads (`final_view`)."""

from __future__ import annotations

import time

from .. import evaluate as scoring
from ..evaluate import item_nll, sample_note, sample_split
from .schedule import EVAL_SHARE_EACH, MIN_SAMPLE_CHARS, PROBE_CHARS


class EvalSets:
    """Rank 0's train and val views (`sets`), and what each sampled one is (`sampled`)."""

    def __init__(self, data, device):
        self.data, self.device = data, device
        self.choose(scoring.SAMPLE_CHARS)

    def choose(self, most: int) -> None:
        """Each split whole, or past SAMPLE_CHARS a seeded sample of about `most` of its characters."""
        self.sets, self.sampled, self.most = {}, {}, most
        for split in ("train", "val"):
            whole = self.data.packed(split)
            view, sample = sample_split(whole, most) if whole.chars > scoring.SAMPLE_CHARS else (whole, None)
            self.sets[split] = view.to(self.device)
            if sample is not None:
                self.sampled[split] = sample

    def fit_to_budget(self, model, budget: float) -> None:
        """Make the samples small enough for one checkpoint to take about EVAL_SHARE_EACH of the
        budget, from the model's evaluation speed measured first on PROBE_CHARS characters of the
        train sample (a 1M-character sample of a 3M-line list took 45 s a checkpoint for the
        default lstm, where 120 s was the whole budget). The probe is drawn from the sample, not
        the whole split: a permutation of its items, not of millions."""
        probe = sample_split(self.sets["train"], PROBE_CHARS)[0].to(self.device)
        item_nll(model, probe)  # the first pass pays for warming up
        began = time.perf_counter()
        item_nll(model, probe)
        rate = probe.chars / max(time.perf_counter() - began, 1e-6)
        most = int(rate * budget * EVAL_SHARE_EACH / len(self.sets))
        self.choose(max(MIN_SAMPLE_CHARS, min(scoring.SAMPLE_CHARS, most)))

    def notes(self) -> dict:
        """The samples as metrics.jsonl records them."""
        return {split: sample_note(sample) for split, sample in self.sampled.items()}

    def final_view(self, split: str, interrupted: bool):
        """A split as the final evaluation measures it, and its sample if it is one: train as every
        checkpoint did; val and test whole, or, when `interrupted`, as the checkpoints did (test's
        sample as large as theirs)."""
        if split in self.sampled and (split == "train" or interrupted):
            return self.sets[split], self.sampled[split]
        whole = self.data.packed(split)
        if split == "test" and interrupted and whole.chars > scoring.SAMPLE_CHARS:
            return sample_split(whole, self.most)
        return whole, None
