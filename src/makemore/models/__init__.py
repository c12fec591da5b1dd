"""The model zoo: a registry that builds any model by name."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import MakemoreError
from .base import CharModel, ModelConfig
from .bigram import Bigram, BigramNN
from .mlp import MLP


@dataclass(frozen=True)
class ModelSpec:
    cls: type[CharModel]
    description: str
    reference: str
    config: dict = field(default_factory=dict)  # model hyperparameter defaults
    train: dict = field(default_factory=dict)  # training defaults (steps, batch, optimiser, ...)


REGISTRY: dict[str, ModelSpec] = {
    "bigram": ModelSpec(
        Bigram,
        "table of bigram counts with add-k smoothing, fitted by counting",
        "lecture 1 (seed 002)",
        {"smoothing": 1.0},
        {"max_steps": 0},
    ),
    "bigram-nn": ModelSpec(
        BigramNN,
        "the bigram table as a one-layer neural net trained by gradient descent",
        "lecture 1 (seed 002)",
        {"l2": 0.01},
        {"max_steps": 500, "batch_size": 4096, "optimizer": "sgd", "lr": 50.0, "lr_schedule": "constant"},
    ),
    "mlp": ModelSpec(
        MLP,
        "fixed-window MLP: embeddings, tanh hidden layer (Kaiming init, optional BatchNorm)",
        "Bengio et al. 2003 (seeds 000, 001, 003, 004)",
        {"block_size": 3, "n_embd": 10, "n_hidden": 200, "batchnorm": True, "kaiming": True, "output_scale": 0.01},
        {"max_steps": 100_000, "batch_size": 32, "optimizer": "sgd", "lr": 0.1, "lr_schedule": "step"},
    ),
}

DEFAULT_MODEL = "mlp"


def get_spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise MakemoreError(f"unknown model {name!r}; choose one of: {', '.join(REGISTRY)} (see `makemore models`)")
    return REGISTRY[name]


def build(name: str, config: ModelConfig) -> CharModel:
    return get_spec(name).cls(config)


__all__ = ["default_params", "REGISTRY", "DEFAULT_MODEL", "ModelSpec", "ModelConfig", "CharModel", "build", "get_spec"]


def default_params(name: str, vocab_size: int = 27, max_len: int = 15) -> int:
    """Parameter count with the registry defaults, on a names-like vocabulary (a-z and the boundary)."""
    return build(name, ModelConfig(vocab_size=vocab_size, max_len=max_len, **get_spec(name).config)).num_params()
