"""config.json's schema: every key makemore reads has the type and range its option declares
(config.py), the vocabulary agrees with the model's size; and the run's vocabulary and data
rebuilt from it."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path

from ..config import (DEFAULT_ITEM_LENGTH, MAX_CHARS, MAX_ITEM_LENGTH, MAX_LABEL_LENGTH, MAX_LABELS, MAX_PARAMS, MAX_SEED,
                      MAX_VOCAB, MODEL_OPTIONS, TRAIN_OPTIONS, OptionError)
from ..data import Dataset, Vocabulary
from ..errors import DataError, RunError
from .files import a, damaged, json_type

def check_section(section: dict, options: dict, where: str, path: Path, known_only: bool = False) -> None:
    """Each value of a config.json section obeys its option's declaration (config.py)."""
    for name, value in section.items():
        if name not in options:
            if known_only:
                raise damaged(path, f'{where} has an unknown setting "{name}" (written by another version of makemore?)')
            continue
        try:
            options[name].check(value)
        except OptionError as e:
            raise damaged(path, e.render(lambda option: f'{where}["{option}"]')) from None


def check_config(cfg, path: Path, models: Collection[str]) -> None:
    """Every key of config.json that makemore reads has the type and range it needs, and the
    vocabulary agrees with the model's size: a damaged or foreign file is one clear RunError.
    `models`: the model names this makemore knows (the registry's, which the store does not import)."""
    if not isinstance(cfg, dict):
        raise damaged(path, f"it holds a JSON {json_type(cfg)}, not an object")
    for key, kind in (("model", str), ("model_config", dict), ("vocab", list), ("train_config", dict), ("data", dict)):
        if key not in cfg:
            raise damaged(path, f'it has no "{key}"')
        if type(cfg[key]) is not kind:
            raise damaged(path, f'"{key}" is {a(json_type(cfg[key]))}, not {a(json_type(kind()))}')
    if cfg["model"] not in models:
        raise RunError(f"{path.parent} holds a model this version of makemore does not know ({cfg['model']!r}); "
                       f"it knows {', '.join(models)}")

    mc = cfg["model_config"]
    for name, high in (("vocab_size", MAX_VOCAB), ("max_len", MAX_ITEM_LENGTH)):  # the limits training keeps to
        value = mc.get(name)
        if type(value) is not int or value < 1 or value > high:
            raise damaged(path, f'"model_config"["{name}"] is {json.dumps(value)[:40]}, not a whole number in 1..{high}')
    for name in ("ngram_contexts", "ngrams"):  # the ngram's table sizes (0 for every other model; absent before them)
        value = mc.get(name, 0)
        if type(value) is not int or value < 0 or value > MAX_PARAMS:
            raise damaged(path, f'"model_config"["{name}"] is {json.dumps(value)[:40]}, not a whole number in 0..{MAX_PARAMS}')
    check_section(mc, MODEL_OPTIONS, '"model_config"', path)

    vocab = cfg["vocab"]
    if not vocab:
        raise damaged(path, '"vocab" is empty')
    for i, ch in enumerate(vocab):
        if type(ch) is not str or len(ch) != 1 or ch == "\n":
            raise damaged(path, f'"vocab"[{i}] is {json.dumps(ch)[:40]}, not one character (other than a newline)')
    if len(set(vocab)) != len(vocab):
        raise damaged(path, '"vocab" lists a character twice')
    if len(vocab) > MAX_CHARS:
        raise damaged(path, f'"vocab" has {len(vocab):,} characters, more than the {MAX_CHARS:,} training takes')
    labels = cfg.get("labels", [])
    if (type(labels) is not list or not all(type(label) is str and 0 < len(label) <= MAX_LABEL_LENGTH for label in labels)
            or len(set(labels)) != len(labels) or len(labels) > MAX_LABELS):
        raise damaged(path, f'"labels" is not a list of at most {MAX_LABELS:,} distinct labels of 1 to {MAX_LABEL_LENGTH} '
                            'characters')
    if mc["vocab_size"] != len(vocab) + 1 + len(labels):
        raise damaged(path, f'"vocab" has {len(vocab)} characters and "labels" {len(labels)} labels but "model_config" '
                            f'says the model has {mc["vocab_size"]} tokens (the characters, the boundary and a start '
                            'token per label); the two disagree')

    check_section(cfg["train_config"], TRAIN_OPTIONS, '"train_config"', path, known_only=True)

    data = cfg["data"]
    for key, kind in (("source", str), ("fingerprint", str), ("split_seed", int)):
        if key not in data:
            raise damaged(path, f'"data" has no "{key}"')
        if type(data[key]) is not kind:
            raise damaged(path, f'"data"["{key}"] is {a(json_type(data[key]))}, not {a(json_type(kind()))}')
    if not data["source"]:
        raise damaged(path, '"data"["source"] is empty')
    if not 0 <= data["split_seed"] <= MAX_SEED:
        raise damaged(path, f'"data"["split_seed"] is {data["split_seed"]}, not a seed in 0..{MAX_SEED}')


def run_vocabulary(config: dict) -> Vocabulary:
    """The vocabulary a run was trained with: its characters, and its labels if it has any."""
    return Vocabulary(config["vocab"], config.get("labels", []))


def run_dataset(config: dict, data: str | None = None, advice: str = "pass the original file with --data PATH") -> Dataset:
    """A run's data (or `data` instead), split as in training, encoded with the run's vocabulary.
    `advice` says how the caller's user can point at the data when it has moved or changed."""
    source = data or config["data"]["source"]
    limit = max(DEFAULT_ITEM_LENGTH, config["model_config"]["max_len"])  # the run's own items passed its limit
    try:
        dataset = Dataset.load(source, config["data"]["split_seed"], vocab=run_vocabulary(config), max_item_chars=limit)
    except DataError as e:
        if data is None:  # the reader's reason, without its advice (which is for a --data option)
            raise DataError(f"cannot read the run's training data ({str(e).split('; ')[0]}); {advice}") from None
        raise
    if data is None and dataset.fingerprint != config["data"]["fingerprint"]:
        raise RunError(f"the training data at {source} has changed since this run was trained; {advice}")
    return dataset
