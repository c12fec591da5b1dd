"""The model zoo: a registry that builds any model by name.

The registry declares each model (its description, reference, defaults, whether it is fitted by
counting) without importing PyTorch: --help, `makemore models` and the option checks read it as
they are. A model's class, in its family's file, is imported when a model is built (`ModelSpec.cls`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import import_module
from typing import TYPE_CHECKING, Callable

from ..config import MODEL_OPTIONS, NEEDS, TRAIN_OPTIONS, ModelConfig, TrainConfig
from ..errors import MakemoreError

if TYPE_CHECKING:
    from .base import CharModel


@dataclass(frozen=True)
class ModelSpec:
    """One model as the registry declares it; `cls` imports its class."""

    implementation: str  # "family:Class": the class, in this package's family.py
    description: str
    reference: str
    config: ModelConfig = field(default_factory=ModelConfig)  # hyperparameters (vocab_size, max_len come from the data)
    train: TrainConfig = field(default_factory=TrainConfig)  # training defaults (steps, batch, optimiser, ...)
    closed_form: bool = False  # fitted by counting, without gradient steps (its class defines fit)

    @property
    def cls(self) -> type[CharModel]:
        family, _, name = self.implementation.partition(":")
        return getattr(import_module(f"{__name__}.{family}"), name)


REGISTRY: dict[str, ModelSpec] = {
    "bigram": ModelSpec(
        "bigram:Bigram",
        "table of bigram counts with add-k smoothing, fitted by counting",
        "lecture 1 (seed 002)",
        ModelConfig(smoothing=1.0),
        TrainConfig(max_steps=0),
        closed_form=True,
    ),
    "bigram-nn": ModelSpec(
        "bigram:BigramNN",
        "the bigram table as a one-layer neural net trained by gradient descent",
        "lecture 1 (seed 002)",
        ModelConfig(l2=0.01),
        TrainConfig(max_steps=500, batch_size=4096, optimizer="sgd", lr=50.0, lr_schedule="constant"),
    ),
    "ngram": ModelSpec(
        "ngram:NGram",
        "character n-gram with interpolated modified Kneser-Ney smoothing, fitted by counting in a second; its "
        "order chosen on val: the one to try first on a short list or with little time",
        "Kneser & Ney 1995; Chen & Goodman 1998",
        ModelConfig(),
        TrainConfig(max_steps=0),
        closed_form=True,
    ),
    "mlp": ModelSpec(
        "mlp:MLP",
        "fixed-window MLP: embeddings, tanh hidden layer (Kaiming init, optional BatchNorm)",
        "Bengio et al. 2003 (seeds 000, 001, 003, 004)",
        ModelConfig(block_size=3, n_embd=10, n_hidden=200, batchnorm=True, kaiming=True, output_scale=0.01),
        TrainConfig(max_steps=100_000, batch_size=32, optimizer="sgd", lr=0.1, lr_schedule="step"),
    ),
    "wavenet": ModelSpec(
        "wavenet:WaveNet",
        "hierarchical MLP: characters fused in pairs, pairs of pairs, ... (dilated causal convolutions, BatchNorm, tanh)",
        "van den Oord et al. 2016, WaveNet (lecture 5)",
        ModelConfig(block_size=8, n_embd=24, n_hidden=128, dropout=0.05),
        TrainConfig(max_steps=25_000, batch_size=32, optimizer="adamw", lr=3e-3, lr_schedule="cosine", weight_decay=0.1),
    ),
    "bow": ModelSpec(
        "bow:BoW",
        "causal bag of words: the average of the embeddings so far, then an MLP",
        "makemore.py's BoW baseline",
        ModelConfig(n_embd=64, n_hidden=256),
        TrainConfig(max_steps=10_000, batch_size=32, optimizer="adamw", lr=3e-3, lr_schedule="cosine"),
    ),
    "rnn": ModelSpec(
        "rnn:RNN",
        "recurrent net: a tanh hidden state carried from character to character",
        "Mikolov et al. 2010",
        ModelConfig(n_embd=64, n_hidden=256, n_layer=1, dropout=0.0),
        TrainConfig(max_steps=10_000, batch_size=32, optimizer="adamw", lr=3e-3, lr_schedule="cosine"),
    ),
    "lstm": ModelSpec(
        "rnn:LSTM",
        "long short-term memory: a gated memory cell carried from character to character",
        "Hochreiter & Schmidhuber 1997, forget gate of Gers et al. 2000, no peepholes",
        # two layers with DropConnect on the recurrent weights: test 1.8989 in these 16K steps
        # (benchmarks/results/models.md); one layer of 384 with dropout alone stayed at ~1.91, two
        # layers without weight drop at ~1.90 (issue 13's trials). Its first 3,000 steps go without
        # dropout ("late dropout"): it passes makemore.py's best (2.005) in 1,100 steps instead of
        # 1,900 (benchmarks/results/time_to_target.md), those steps costing less (no masks drawn), and ends
        # no worse (dropping from the first step: 1.8991; from step 2,000: 1.9000, a trial)
        ModelConfig(n_embd=64, n_hidden=384, n_layer=2, dropout=0.35, weight_drop=0.3),
        TrainConfig(max_steps=16_000, batch_size=32, optimizer="adamw", lr=3e-3, lr_schedule="cosine", weight_decay=0.1,
         ema=0.9995, dropout_from=3_000),
    ),
    "gru": ModelSpec(
        "rnn:GRU",
        "gated recurrent unit: a hidden state with reset and update gates",
        "Cho et al. 2014, reset gate after the matmul (as cuDNN and nn.GRU)",
        ModelConfig(n_embd=64, n_hidden=256, n_layer=1, dropout=0.2),
        TrainConfig(max_steps=30_000, batch_size=32, optimizer="adamw", lr=3e-3, lr_schedule="cosine", weight_decay=0.1),
    ),
    "transformer": ModelSpec(
        "transformer:Transformer",
        "GPT: token and position embeddings, pre-LayerNorm blocks of causal self-attention and a GELU MLP",
        "Vaswani et al. 2017; Radford et al. 2019 (GPT-2)",
        ModelConfig(n_embd=64, n_head=4, n_layer=4, dropout=0.2),
        TrainConfig(max_steps=20_000, batch_size=128, optimizer="adamw", lr=3e-3, lr_schedule="cosine", warmup_steps=300),
    ),
}

DEFAULT_MODEL = "lstm"  # best test NLL in benchmarks/results/models.md within 10 minutes of CPU
AUTO = "auto"  # not a model of the registry: the ngram, then a neural model chosen for the data and budget (auto.py)


def get_spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise MakemoreError(f"unknown model {name!r}; choose one of: {', '.join(REGISTRY)}, or {AUTO} (see `makemore models`)")
    return REGISTRY[name]


def model_options(name: str) -> tuple[str, ...]:
    """The model options `name` reads, from their declarations (config.Spec.models)."""
    return tuple(o for o, opt in MODEL_OPTIONS.items() if opt.spec.models is None or name in opt.spec.models)


def why_not(option: str, name: str, config: ModelConfig, tc: TrainConfig) -> Callable[[Callable[[str], str]], str] | None:
    """None when `option` applies to model `name` run with `config` and `tc`; else why not, as a
    message given how to show an option's name (config.OptionError). It reads the option's
    declaration (config.Spec.models and .needs), as `makemore models` and --help do."""
    if option in MODEL_OPTIONS:
        if option in model_options(name):
            return None
        readers = ", ".join(MODEL_OPTIONS[option].spec.models)
        return lambda show: f"model {name} does not use {show(option)} (it is read by {readers}); see `makemore models`"
    for need in TRAIN_OPTIONS[option].spec.needs:
        if need == "steps" and get_spec(name).closed_form:
            instead = ("train bigram-nn, the same model by gradient descent" if name == "bigram" else
                       "train a model that takes steps (see `makemore models`)")
            return lambda show: (f"{name} is fitted by counting, in one pass without gradient steps: {show(option)} has "
                                 f"nothing to act on; drop it, or {instead}")
        if need == "dropout" and not (config.dropout > 0 or config.weight_drop > 0):
            drops = [o for o in ("dropout", "weight_drop") if o in model_options(name)]
            if not drops:
                return lambda show: f"{show(option)} delays dropout, and {name} has none to delay; drop {show(option)}"
            return lambda show: (f"{show(option)} delays dropout, and this {name} drops nothing ({' and '.join(map(show, drops))} "
                                 f"{'is' if len(drops) == 1 else 'are'} 0); set {show(drops[0])} too, or drop {show(option)}")
        if need == "adamw" and tc.optimizer != "adamw":
            return lambda show: (f"{show(option)} is AdamW's, and this run uses {show('optimizer')} {tc.optimizer}; "
                                 f"pass {show('optimizer')} adamw too, or drop {show(option)}")
        if need == "diagnostics" and not tc.diagnostics:
            return lambda show: f"{show(option)} sets how often {show('diagnostics')} records; pass {show('diagnostics')} too"
    return None


def applies_to(option: str) -> str:
    """Which models and runs an option applies to, as --help and `makemore models` say it."""
    spec = (MODEL_OPTIONS.get(option) or TRAIN_OPTIONS[option]).spec
    if spec.models is not None:
        return ", ".join(spec.models)
    counted = [n for n, s in REGISTRY.items() if s.closed_form]
    words = [NEEDS[need].replace(NEEDS["steps"], f"every model but {', '.join(counted)}") for need in spec.needs]
    return "; ".join(words) or "every model"


def build(name: str, config: ModelConfig) -> CharModel:
    return get_spec(name).cls(config)


def default_params(name: str, vocab_size: int = 27, max_len: int = 15) -> int:
    """Parameter count with the registry defaults, on a names-like vocabulary (a-z and the boundary)."""
    return build(name, replace(get_spec(name).config, vocab_size=vocab_size, max_len=max_len)).num_params()


def __getattr__(name: str):
    """CharModel, the interface every model implements, imported (with PyTorch) when first asked for."""
    if name == "CharModel":
        from .base import CharModel

        return CharModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["default_params", "REGISTRY", "AUTO", "DEFAULT_MODEL", "ModelSpec", "ModelConfig", "CharModel", "applies_to", "build",
           "get_spec", "model_options", "why_not"]
