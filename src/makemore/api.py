"""The Python API for trained runs: `makemore.load(run_dir)` (training is `makemore.train`, in trainer.py)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Iterator

import torch

from .checkpoint import CONFIG, RunDir, damaged, run_dataset, run_vocabulary
from .config import DEVICES, MAX_PARAMS, SampleConfig, check_path, check_text, check_texts, spelled_out
from .constraints import Constraints, NotEnough, Sampling, as_text_path, chunk_size
from .data import SPLIT_NAMES, pack
from .device import pick_device
from .errors import MakemoreError
from .evaluate import EvalResult, evaluate
from .models import REGISTRY, CharModel, ModelConfig, build
from .sample import Score, generate, nll_by_label, score, stripped

PRETRAINED = Path(str(resources.files("makemore") / "pretrained" / "names-sex"))  # scripts/build_pretrained.py


class Run:
    """A trained run directory, ready to sample, score and evaluate."""

    def __init__(self, path: str | Path, device: str = "auto"):
        check_path("path", path, optional=False)
        check_text("device", device, optional=False, choices=DEVICES)
        self.dir = RunDir(path)
        self.config = self.dir.read_config(REGISTRY)
        self.vocab = run_vocabulary(self.config)
        self.model_config = ModelConfig.from_dict(self.config["model_config"])
        self.dir.check_weights(skeleton(self.config, self.dir.file(CONFIG)))
        self.model = build(self.config["model"], self.model_config)
        self.dir.load_weights(self.model)
        self.model.to(pick_device(device)).eval()
        self._training_items: set[str] | None = None

    @property
    def path(self) -> Path:
        return self.dir.path

    def training_items(self) -> "set[str] | seen.Seen":
        """Every item of the run's data file (all splits): what `novel` samples must avoid. A large
        file's items are kept as sorted hashes over its mapped tokens (seen.py), not as strings."""
        if self._training_items is None:
            source = self.config["data"]["source"]
            advice = f"put the original file back at {source}, or sample without --novel"
            from . import seen  # noqa: PLC0415 - the hook of issue 21, kept to this method

            self._training_items = seen.of_dataset(run_dataset(self.config, advice=advice))
        return self._training_items

    @property
    def labels(self) -> list[str]:
        """The labels of a labelled run (empty for an unlabelled one)."""
        return self.vocab.labels

    def label_prior(self) -> torch.Tensor:
        """Each label's share of the training split: p(label)."""
        counts = self.config["data"].get("label_counts") or {}
        weights = torch.tensor([float(counts.get(label, 0)) for label in self.labels], dtype=torch.float64)
        return weights / weights.sum() if weights.sum() > 0 else torch.full((len(self.labels),), 1 / len(self.labels), dtype=torch.float64)

    def start_tokens(self, k: int, label: str | None, generator: torch.Generator) -> torch.Tensor | None:
        """Each item's first token: its label's (drawn from the prior when none is given), or None
        (the boundary) for an unlabelled run."""
        if label is not None:
            return torch.full((k,), self.vocab.label_token(label), dtype=torch.long)
        if not self.labels:
            return None
        prior = self.label_prior().float().to(generator.device)
        return self.vocab.first_label + torch.multinomial(prior.expand(k, -1), 1, replacement=True, generator=generator).squeeze(1)

    def sample(self, n: int = SampleConfig.n, **options) -> list[str]:
        """`n` items. The options are SampleConfig's (config.py), by name: `prefix`, `min_len` and
        `max_len` shape every item as it is drawn; `novel` (distinct items not in the data), `suffix`,
        `contains`, `exclude` (a file of items) and `unique` keep only the items that meet them, and
        raise NotEnough (with the items found) if `max_draws` (default max(1000, 50 n)) draws do not
        hold enough. See constraints.py. With `label` (a labelled run), items of that label; without,
        each item's label is drawn from the labels' frequencies in the training split."""
        return self.sampling(n=n, **options).items()

    def stream(self, n: int = SampleConfig.n, **options) -> Iterator[list[str]]:
        """The items of `sample`, the same ones for the same seed, as lists of a few thousand, each
        given as soon as it is drawn: millions of items without holding them all. (`unique` and
        `novel` still remember every item given so far, to give none twice.) Arguments are checked
        at once, not at the first item; NotEnough comes after the items found."""
        return self.sampling(n=n, **options).stream()

    def sampling(self, **options) -> Sampling:
        """The options checked (by SampleConfig, then against this model: its labels, its vocabulary,
        its longest item) and made ready to draw, the seed drawn when none is given."""
        if "exclude" in options:
            options["exclude"] = as_text_path(options["exclude"])
        config = SampleConfig.of(**options).seeded()
        if config.label is not None:
            self.vocab.label_token(config.label)  # an unknown label, or a label for an unlabelled run: one line now
        wanted = Constraints.of(config, self.vocab, self.model_config.max_len, self.training_items)
        g = torch.Generator(device=self.model.device).manual_seed(config.seed)
        longest, allowed = wanted.longest(self.model_config.max_len), wanted.allowed_tokens(self.vocab)
        draw = lambda k: generate(self.model, self.vocab, k, longest, g, config.temperature, config.top_k,  # noqa: E731
                                  config.top_p, config.prefix, wanted.min_len, self.start_tokens(k, config.label, g),
                                  allowed)
        return Sampling(config, wanted, draw, chunk_size(longest, len(self.vocab)))

    def score(self, texts: list[str], label: str | None = None) -> list[Score]:
        """Each text's NLL. A labelled run scores p(text | label) with `label`, and without it the
        text's probability under any label, p(text) = sum over labels of p(label) p(text | label)."""
        texts = check_texts("texts", texts)
        check_text("label", label)
        if not texts:
            return []
        if label is not None or not self.labels:
            if label is not None:
                self.vocab.label_token(label)
            return score(self.model, self.vocab, texts, label)
        items = stripped(texts)
        marginal = -torch.logsumexp(self.label_prior().log() - self.nll_by_label(texts), dim=1)
        return [Score(t, float(m), float(m) / (len(t) + 1), len(t) + 1) for t, m in zip(items, marginal)]

    def nll_by_label(self, texts: list[str]) -> torch.Tensor:
        """(texts, labels) float64: each text's NLL given each label, -log p(text | label), in the
        order of `labels`; every label's rows in one batched pass."""
        return nll_by_label(self.model, self.vocab, check_texts("texts", texts)).cpu()

    def classify(self, texts: list[str]) -> list[dict[str, float]]:
        """For each text, each label's posterior p(label | text), from the model's likelihoods and the
        labels' frequencies in the training split (Bayes' rule)."""
        texts = check_texts("texts", texts)
        if not self.labels:
            raise MakemoreError(f"{self.path} was trained without labels, so there is nothing to classify into; train it on "
                                "data with a label per line (item<TAB>label), e.g. --data names-sex")
        if not texts:
            return []
        posterior = torch.softmax(self.label_prior().log() - self.nll_by_label(texts), dim=1)
        return [dict(zip(self.labels, row.tolist())) for row in posterior]

    def evaluate(self, split: str = "val", data: str | Path | None = None) -> EvalResult:
        check_text("split", split, optional=False, choices=SPLIT_NAMES)
        check_path("data", data)
        dataset = run_dataset(self.config, data)
        labels = dataset.split_labels[split] if dataset.split_labels else None
        return evaluate(self.model, dataset.packed(split, self.model.max_tokens()).to(self.model.device), split, labels)


    def evaluate_items(self, texts: list[str], labels: list[str] | None = None) -> EvalResult:
        """Mean NLL per predicted character over `texts` (each given its label, for a labelled run)."""
        texts = check_texts("texts", texts)
        if labels is not None:
            labels = check_texts("labels", labels)
        if not texts:
            raise MakemoreError("no items to evaluate; give at least one")
        if bool(labels) != bool(self.labels) or (labels and len(labels) != len(texts)):
            raise MakemoreError(f"this run is labelled ({', '.join(self.labels[:5])}{', ...' if len(self.labels) > 5 else ''}); "
                                "give each item with its label, as item<TAB>label lines" if self.labels else
                                "this run was trained without labels; give the items without them (no TABs)")
        packed = pack(self.vocab, stripped(texts), self.model.max_tokens(), labels)
        return evaluate(self.model, packed.to(self.model.device), "items", labels)


def skeleton(config: dict, path: Path) -> CharModel:
    """The model config.json (at `path`) describes, built on PyTorch's meta device: shapes without
    memory, so a config.json that describes a huge model allocates nothing. One whose settings do
    not fit together, or with more parameters than training makes (MAX_PARAMS), is a RunError."""
    try:
        with torch.device("meta"):
            model = build(config["model"], ModelConfig.from_dict(config["model_config"]))
    except MakemoreError as e:  # read_config knows the model; its settings do not fit together
        raise damaged(path, f"its model settings do not fit together ({e})") from None
    if model.num_params() > MAX_PARAMS:
        raise damaged(path, f"its model has {model.num_params():,} parameters, more than the {MAX_PARAMS:,} training makes")
    return model


for method in (Run.sample, Run.stream, Run.sampling):  # help() and editors show the options by name
    method.__signature__ = spelled_out(method, SampleConfig)

NotEnoughNovel = NotEnough  # its name before there were other constraints; makemore serve catches it


def load(path: str | Path, device: str = "auto") -> Run:
    return Run(path, device)


def load_pretrained(device: str = "auto") -> Run:
    """The model shipped in the package: an lstm trained on the built-in names-sex (PRETRAINED/pretrained.json)."""
    return Run(PRETRAINED, device)
