"""The Python API for trained runs: `makemore.load(run_dir)` (training is `makemore.train`, in trainer.py)."""

from __future__ import annotations

import random
from pathlib import Path

import torch

from .checkpoint import CONFIG, RESTORE, RunDir, run_dataset
from .data import SPLIT_NAMES, Vocabulary
from .device import pick_device
from .errors import MakemoreError, RunError
from .evaluate import EvalResult, evaluate
from .models import ModelConfig, build
from .config import SampleConfig, check_path
from .constraints import Constraints, NotEnough, as_text_path
from .sample import Score, generate, score


class Run:
    """A trained run directory, ready to sample, score and evaluate."""

    def __init__(self, path: str | Path, device: str = "auto"):
        check_path("path", path, optional=False)
        self.dir = RunDir(path)
        self.config = self.dir.read_config()
        self.vocab = Vocabulary(self.config["vocab"])
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
               top_p: float | None = None, prefix: str = "", novel: bool = False, max_draws: int | None = None,
               suffix: str = "", contains: str = "", min_len: int | None = None, max_len: int | None = None,
               exclude: str | Path | None = None, unique: bool = False) -> list[str]:
        """`n` items. `prefix`, `min_len` and `max_len` shape every item as it is drawn; `novel`
        (distinct items not in the data), `suffix`, `contains`, `exclude` (a file of items) and
        `unique` keep only the items that meet them, and raise NotEnough (with the items found) if
        `max_draws` (default max(1000, 50 n)) draws do not hold enough. See constraints.py."""
        config = SampleConfig(n, seed, temperature, top_k, top_p, prefix, novel, suffix=suffix, contains=contains,
                              min_len=min_len, max_len=max_len, exclude=as_text_path(exclude), unique=unique)
        if max_draws is not None and (isinstance(max_draws, bool) or not isinstance(max_draws, int) or max_draws < 1):
            raise MakemoreError(f"max_draws must be a whole number of at least 1 (got {max_draws!r})")
        wanted = Constraints.of(config, self.vocab, self.model_config.max_len, self.training_items)
        device = self.model.device
        g = torch.Generator(device=device).manual_seed(random.randrange(2**63) if config.seed is None else config.seed)
        longest = wanted.longest(self.model_config.max_len)
        draw = lambda k: generate(self.model, self.vocab, k, longest, g, config.temperature, config.top_k,  # noqa: E731
                                  config.top_p, config.prefix, wanted.min_len)
        return wanted.sample(draw, config.n, max_draws)

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


NotEnoughNovel = NotEnough  # its name before there were other constraints; makemore serve catches it


def load(path: str | Path, device: str = "auto") -> Run:
    return Run(path, device)
