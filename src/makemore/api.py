"""The Python API for trained runs: `makemore.load(run_dir)` (training is `makemore.train`, in trainer.py)."""

from __future__ import annotations

import random
from dataclasses import astuple
from pathlib import Path

import torch

from .checkpoint import CONFIG, RESTORE, RunDir, run_dataset, run_vocabulary
from .data import SPLIT_NAMES, Vocabulary
from .device import pick_device
from .errors import MakemoreError, RunError
from .evaluate import EvalResult, evaluate
from .models import ModelConfig, build
from .config import SampleConfig, check_path
from .sample import Score, generate, score

SAMPLE_CHUNK = 4096  # items generated at once; bounds memory for large -n


class Run:
    """A trained run directory, ready to sample, score and evaluate."""

    def __init__(self, path: str | Path, device: str = "auto"):
        check_path("path", path, optional=False)
        self.dir = RunDir(path)
        self.config = self.dir.read_config()
        self.vocab = run_vocabulary(self.config)
        self.model_config = ModelConfig.from_dict(self.config["model_config"])
        try:
            with torch.device("meta"):  # shapes only: a config.json that describes a huge model allocates nothing
                skeleton = build(self.config["model"], self.model_config)
        except MakemoreError as e:  # read_config knows the model; its settings do not fit together
            raise RunError(f"{self.dir.file(CONFIG)} is damaged: its model settings do not fit together ({e}); {RESTORE}") from None
        self.dir.check_weights(skeleton)
        self.model = build(self.config["model"], self.model_config)
        self.dir.load_weights(self.model)
        self.model.to(pick_device(device)).eval()
        self._training_items: set[str] | None = None

    @property
    def path(self) -> Path:
        return self.dir.path

    def training_items(self) -> set[str]:
        """Every item of the run's data file (all splits): what `novel` samples must avoid."""
        if self._training_items is None:
            source = self.config["data"]["source"]
            advice = f"put the original file back at {source}, or sample without --novel"
            self._training_items = set(run_dataset(self.config, advice=advice).items)
        return self._training_items

    def sample(self, n: int = 10, seed: int | None = None, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, prefix: str = "", novel: bool = False, max_draws: int | None = None) -> list[str]:
        """`n` items. With `novel`, only distinct items not in the data; raises if `max_draws`
        (default max(1000, 50 n)) samples do not hold enough of them."""
        n, seed, temperature, top_k, top_p, prefix, novel = astuple(SampleConfig(n, seed, temperature, top_k, top_p, prefix, novel))
        if max_draws is not None and (isinstance(max_draws, bool) or not isinstance(max_draws, int) or max_draws < 1):
            raise MakemoreError(f"max_draws must be a whole number of at least 1 (got {max_draws!r})")
        device = self.model.device
        g = torch.Generator(device=device).manual_seed(random.randrange(2**63) if seed is None else seed)
        draw = lambda k: generate(self.model, self.vocab, k, self.model_config.max_len, g, temperature, top_k, top_p, prefix)  # noqa: E731
        if not novel:
            return [item for i in range(0, n, SAMPLE_CHUNK) for item in draw(min(SAMPLE_CHUNK, n - i))]
        seen, found, draws = self.training_items(), {}, 0
        limit = max_draws or max(1000, 50 * n)
        while len(found) < n and draws < limit:
            k = min(SAMPLE_CHUNK, max(256, 2 * (n - len(found))), limit - draws)
            draws += k
            for item in draw(k):
                if item and item not in seen and item not in found and len(found) < n:
                    found[item] = None
        if len(found) < n:
            raise NotEnoughNovel(list(found), n, draws)
        return list(found)

    def score(self, texts: list[str]) -> list[Score]:
        if isinstance(texts, str):
            raise MakemoreError("texts must be a list of strings, not one string: pass [text] to score one item")
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise MakemoreError(f"texts must be a list of strings (got {type(texts).__name__})")
        return score(self.model, self.vocab, list(texts))

    def evaluate(self, split: str = "val", data: str | None = None) -> EvalResult:
        if split not in SPLIT_NAMES:
            raise MakemoreError(f"unknown split {split!r}; choose one of: {', '.join(SPLIT_NAMES)}")
        check_path("data", data)
        dataset = run_dataset(self.config, data)
        return evaluate(self.model, dataset.packed(split, self.model.max_tokens()).to(self.model.device), split)


class NotEnoughNovel(MakemoreError):
    exit_code = 1

    def __init__(self, found: list[str], wanted: int, draws: int):
        self.found = found
        super().__init__(f"found only {len(found)} of {wanted} novel items in {draws} samples; ask for fewer or raise --temperature")


def load(path: str | Path, device: str = "auto") -> Run:
    return Run(path, device)
