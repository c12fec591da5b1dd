"""Every model and training option, declared once.

An option is a field of `ModelConfig` or `TrainConfig` declared with `option(...)`: its type
(the annotation), default, help and allowed values live here and nowhere else. From them come
the command line's flags (commands/), the Python API's keyword checks, the validation messages,
what config.json records and what `--resume` may change. The choices of the other arguments
(--device, --format, --kind) are here too. This module imports nothing heavy: the command line
builds its parser from it without PyTorch.
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
import random
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, replace

from .errors import MakemoreError

SPLIT_NAMES = ("train", "val", "test")  # the 80/10/10 parts of the data, in that order
DEFAULT_SPLIT_SEED = 42  # the seeds' random.seed(42) before shuffling the words
DEFAULT_ITEM_LENGTH = 1000  # default --max-item-length: a batch is padded to its longest item
DEFAULT_INTERVAL = 100  # steps between diagnostics records: keeps their cost small (benchmarks/diagnostics_overhead.py)

# ---- limits ----------------------------------------------------------------------------------------
# Each limit is one constant, read both by what accepts a value (the options below, the data reader,
# training) and by what opens a run directory (checkpoint.py, api.py): a run that training writes is
# never one that loading calls damaged. tests/test_limits_properties.py trains at each edge and loads.
MAX_SEED = 2**64 - 1  # the largest seed torch.manual_seed takes (every seed option, config.json's split_seed)
MAX_STEPS = 10**9  # steps of a run (and intervals counted in steps); state.safetensors' step
MAX_DRAWS = 10**12  # items one call of sample may draw to find those that meet its constraints
MAX_ITEM_LENGTH = 10**6  # characters in an item: --max-item-length's ceiling, the largest max_len a run declares
MAX_CHARS = 20_000  # distinct characters in the data: every predicted position costs a logit per token, and the
# largest real alphabets of names and words (Chinese, Japanese, Korean) use under 10,000
MAX_LABELS = 1_000  # distinct labels in labelled data: each is a start token of the vocabulary
MAX_LABEL_LENGTH = 100  # characters in a label: config.json lists every label twice (vocabulary and counts)
MAX_VOCAB = MAX_CHARS + 1 + MAX_LABELS  # tokens: the characters, the boundary, a start token per label
MAX_PARAMS = 2 * 10**9  # a model past this would not fit in memory here, nor train in any time we mean
MAX_ORDER = 32  # an n-gram's n: past the longest items' length more context changes nothing
# Files of a run directory are read whole, so each is bounded (config.json with the limits above is 1.05
# MB at most: test_the_largest_config_training_can_write_fits_the_bound). The .jsonl files are appended
# to by training, which refuses to grow one past its bound.
MAX_JSON_BYTES = 16 << 20  # config.json, summary.json
MAX_RECORDS_BYTES = 1 << 30  # metrics.jsonl (about 200 bytes an evaluation), diagnostics.jsonl
MAX_HEADER_BYTES = 16 << 20  # the JSON header of a .safetensors file (a few kB for any model here)
# Data files are read in blocks and stored as flat tokens (prepare.py). One past CACHE_FROM_BYTES is
# tokenized once into the cache ($MAKEMORE_CACHE, else ~/.cache/makemore) and memory-mapped after; a
# smaller one is read whole each time (names.txt, 228 kB, in 0.1 s).
READ_BLOCK_BYTES = 16 << 20  # bytes of a data file decoded and encoded at once: bounds the Python strings held
CACHE_FROM_BYTES = 1 << 20


@dataclass(frozen=True)
class Spec:
    """What a value must be, beyond its type. Bounds are inclusive unless `above` is set."""

    help: str
    low: float | None = None
    high: float | None = None
    above: bool = False  # the value must be strictly greater than `low`
    choices: tuple[str, ...] | None = None
    resumable: bool = False  # `resume` may change it
    short: str | None = None  # a one-letter flag beside the long one, e.g. -n
    metavar: str | None = None  # what the flag's value is called in --help, when not N, F or TEXT
    # Which models the option applies to: the one fact that a refusal, `makemore models` and --help
    # read (models.why_not). `models`: the model options' readers, by name (None: every model).
    # `needs`: the training options' conditions on the model and the rest of the run, from NEEDS.
    models: tuple[str, ...] | None = None
    needs: tuple[str, ...] = ()


# The conditions a training option may need (Spec.needs), as --help and `makemore models` word them;
# models.why_not checks them and words each refusal.
NEEDS = {
    "steps": "models trained by gradient steps",
    "dropout": "runs that drop (--dropout or --weight-drop above 0)",
    "adamw": "runs with --optimizer adamw",
    "diagnostics": "runs with --diagnostics",
}
RECURRENT = ("rnn", "lstm", "gru")
NEURAL = ("mlp", "wavenet", "bow", *RECURRENT, "transformer")  # models with embeddings and hidden layers


def option(default, help: str, **spec) -> typing.Any:
    return field(default=default, metadata={"option": Spec(help, **spec)})


class OptionError(MakemoreError):
    """A bad option. Its message names options as `--flag` on the command line and as `name` in
    Python: `render` writes the message given how to show an option's name."""

    def __init__(self, render: typing.Callable[[typing.Callable[[str], str]], str]):
        self.render = render
        super().__init__(render(str))

    @classmethod
    def bad_value(cls, name: str, problem: str) -> "OptionError":
        return cls(lambda show: f"{show(name)} {problem}")

    def for_cli(self) -> str:
        return self.render(flag)


def flag(name: str) -> str:
    """How the command line spells an option: its one-letter flag if it has one, else --name-with-dashes."""
    for table in (TRAIN_OPTIONS, MODEL_OPTIONS, SAMPLE_OPTIONS):
        if name in table and table[name].spec.short:
            return table[name].spec.short
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Option:
    name: str
    kind: type  # int, float, bool or str
    optional: bool  # None is allowed (and means "decide from the rest")
    default: typing.Any
    spec: Spec

    def check(self, value):
        """The value, normalised (ints given for floats become floats), or OptionError."""
        if value is None:
            if self.optional:
                return None
            raise OptionError.bad_value(self.name, "must be given (got None)")
        if self.kind is bool:
            if not isinstance(value, bool):
                raise OptionError.bad_value(self.name, f"must be True or False (got {value!r})")
            return value
        if self.kind is str:
            if self.spec.choices and value not in self.spec.choices:
                raise OptionError.bad_value(self.name, f"must be one of: {', '.join(self.spec.choices)} (got {value!r})")
            if not isinstance(value, str):
                raise OptionError.bad_value(self.name, f"must be text (got {value!r})")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float) if self.kind is float else int):
            raise OptionError.bad_value(self.name, f"must be {'a number' if self.kind is float else 'a whole number'} (got {value!r})")
        if self.kind is float:
            value = float(value)
            if not math.isfinite(value):
                raise OptionError.bad_value(self.name, f"must be a finite number (got {value})")
        low, high = self.spec.low, self.spec.high
        if low is not None and (value <= low if self.spec.above else value < low):
            raise OptionError.bad_value(self.name, f"must be {'>' if self.spec.above else 'at least'} {shown(low)} (got {value})")
        if high is not None and value > high:
            raise OptionError.bad_value(self.name, f"must be at most {shown(high)} (got {value})")
        return value


def shown(bound: float) -> str:
    return f"{bound:,}" if isinstance(bound, int) else f"{bound:g}"


def options_of(cls) -> dict[str, Option]:
    """The declared options of a config class, in declaration order."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in fields(cls):
        if "option" not in f.metadata:
            continue
        kind, optional = hints[f.name], False
        if isinstance(kind, types.UnionType):
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            kind, optional = args[0], len(args) < len(typing.get_args(kind))
        out[f.name] = Option(f.name, kind, optional, None if f.default is MISSING else f.default, f.metadata["option"])
    return out


class Config:
    """Shared by ModelConfig and TrainConfig: checked on creation, round-trips through config.json."""

    def __post_init__(self):
        for name, opt in options_of(type(self)).items():
            object.__setattr__(self, name, opt.check(getattr(self, name)))
        self.check()

    def check(self) -> None:
        """Rules between options; each class adds its own."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ---- the Python API's other arguments: each checked where it comes in, the message naming it -----------


def shown_value(value) -> str:
    """A value as an error message quotes it: its repr, cut short (a list of a million items is not quoted whole)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_path(name: str, value, optional: bool = True) -> None:
    """A file or folder argument of the Python API is a str or a path (None where it has a default)."""
    if value is None and optional:
        return
    if not isinstance(value, (str, os.PathLike)) or value == "":
        raise MakemoreError(f"{name} must be a path (a str or pathlib.Path), got {shown_value(value)}")


def check_text(name: str, value, optional: bool = True, choices: tuple[str, ...] | None = None) -> None:
    """A text argument (None where it has a default), one of `choices` when given."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise MakemoreError(f"{name} must be text (got {shown_value(value)})")
    if choices is not None and value not in choices:
        raise MakemoreError(f"{name} must be one of: {', '.join(choices)} (got {shown_value(value)})")


def check_flag(name: str, value) -> None:
    if not isinstance(value, bool):
        raise MakemoreError(f"{name} must be True or False (got {shown_value(value)})")


def check_texts(name: str, values) -> list[str]:
    """A list (or tuple) of texts, the first that is not text named by its index: texts[1]."""
    if isinstance(values, str):
        raise MakemoreError(f"{name} must be a list of texts, not one text: pass [{shown_value(values)}] for one item")
    if not isinstance(values, (list, tuple)):
        raise MakemoreError(f"{name} must be a list of texts (got {shown_value(values)})")
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise MakemoreError(f"{name}[{i}] must be text (got {shown_value(value)})")
    return list(values)


def unknown_option(name: str, known) -> MakemoreError:
    close = difflib.get_close_matches(name, list(known), n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    return MakemoreError(f"unknown option {name!r}; {guess}the options are: {', '.join(known)}")


@dataclass(frozen=True)
class ModelConfig(Config):
    """Every hyperparameter a model may read; each option names the models that read it (`models`).
    vocab_size and max_len come from the data, not from the user, and the ngram's table sizes from its fit."""

    vocab_size: int = 27
    max_len: int = 32  # longest item in the data: bounds sequence length (position tables, sampling)
    # the ngram's tables are as large as the data makes them: its fit records their sizes here, so that
    # config.json says the shapes of its tensors (models/ngram.py), as vocab_size does for every model
    ngram_contexts: int = 0
    ngrams: int = 0
    block_size: int = option(3, "characters of context", models=("mlp", "wavenet"), low=1, high=1024)
    n_embd: int = option(10, "embedding width", models=NEURAL, low=1, high=8192)
    n_hidden: int = option(200, "hidden width", models=("mlp", "wavenet", "bow", *RECURRENT), low=1, high=16384)
    n_layer: int = option(2, "number of layers", models=(*RECURRENT, "transformer"), low=1, high=64)
    n_head: int = option(4, "attention heads", models=("transformer",), low=1, high=256)
    dropout: float = option(0.0, "dropout probability", models=("wavenet", *RECURRENT, "transformer"), low=0.0, high=0.99)
    weight_drop: float = option(0.0, "DropConnect on the hidden-to-hidden weights, one mask per batch", models=RECURRENT,
                                low=0.0, high=0.99)
    batchnorm: bool = option(False, "BatchNorm before the tanh", models=("mlp",))
    kaiming: bool = option(True, "Kaiming init with the tanh gain", models=("mlp",))
    output_scale: float = option(0.01, "scale of the output layer at init", models=("mlp",), low=0.0, high=100.0)
    smoothing: float = option(1.0, "add-k smoothing of the counts", models=("bigram",), low=0.0, high=1e9)
    l2: float = option(0.0, "L2 penalty on the weight table", models=("bigram-nn",), low=0.0, high=1e9)
    order: int | None = option(None, "the n of the n-gram: each character is predicted from the n-1 before it (default: "
                                     "the order with the lowest val NLL)", models=("ngram",), low=1, high=MAX_ORDER)
    fused: bool = option(True, "PyTorch's fused recurrent kernel; --no-fused runs the readable cells, slower, whose "
                               "nonlinearities --diagnostics can see", models=RECURRENT)


OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("constant", "step", "cosine")
DTYPES = ("float32", "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig(Config):
    max_steps: int = option(10_000, "optimisation steps (default: the model's)", needs=("steps",), low=0, high=MAX_STEPS,
                            resumable=True)
    time_budget: float | None = option(None, "stop training after this many seconds, counted from the first step and "
                                             "the evaluations during training included (not the start-up before, nor the "
                                             "final evaluation of the kept model after); the progress bar then counts "
                                             "these seconds", low=0.0, above=True, resumable=True)
    batch_size: int = option(32, "items per batch (characters for mlp)", needs=("steps",), low=1, high=2**20)
    optimizer: str = option("adamw", "optimiser", needs=("steps",), choices=OPTIMIZERS)
    lr: float = option(1e-3, "learning rate", needs=("steps",), low=0.0, above=True)
    lr_schedule: str = option("constant", "step: lr/10 from half way; cosine: down to lr/10", needs=("steps",),
                             choices=SCHEDULES)
    weight_decay: float = option(0.01, "AdamW's weight decay of the matrices", needs=("steps", "adamw"), low=0.0)
    warmup_steps: int = option(0, "linear learning-rate warm-up steps", needs=("steps",), low=0, high=MAX_STEPS)
    dropout_from: int = option(0, "train the first N steps without dropout or weight drop, then with them ('late "
                                  "dropout', Liu et al. 2023): quicker early progress, regularised later; 0: from the start",
                               needs=("steps", "dropout"), low=0, high=MAX_STEPS)
    ema: float = option(0.0, "keep a moving average of the weights with this decay (e.g. 0.999) and evaluate and save it; "
                             "0: off", needs=("steps",), low=0.0, high=0.999999999)
    eval_interval: int | None = option(None, "steps between exact evaluations and checkpoints (default: about 20 per run: every "
                                             "max_steps/20 steps, or with --time-budget every twentieth of it, spaced so that "
                                             "evaluating takes at most a fifth of the time)",
                                       needs=("steps",), low=1, high=MAX_STEPS)
    seed: int = option(1337, "random seed for init, batches and dropout", needs=("steps",), low=0, high=MAX_SEED)
    split_seed: int = option(DEFAULT_SPLIT_SEED, "seed of the train/val/test shuffle", low=0, high=MAX_SEED)
    max_item_length: int = option(DEFAULT_ITEM_LENGTH, "refuse data with a longer item (each item is padded to the longest)",
                                  low=1, high=MAX_ITEM_LENGTH)
    diagnostics: bool = option(False, "record activation, gradient and update statistics for `makemore plot`",
                              needs=("steps",))
    diagnostics_interval: int | None = option(None, f"steps between diagnostic records (default {DEFAULT_INTERVAL})",
                                              needs=("steps", "diagnostics"), low=1, high=MAX_STEPS)
    tensorboard: bool = option(False, "also log losses and learning rate to RUN/tensorboard (needs makemore[tensorboard])")
    threads: int | None = option(None, "torch threads on the CPU (default: $OMP_NUM_THREADS if set, else the cores this "
                                       "process may use less those other processes keep busy now, read from /proc/stat "
                                       "over 0.25 s or, without it, the 1-minute load average; at least 1)",
                                 low=1, high=1024, resumable=True)
    # How the arithmetic is done on this machine, not what is learned: the weights stay float32 and
    # the model the same, so --resume may change both (a run trained with fp16 on a GPU, say, can be
    # continued on a CPU, where fp16 is refused). A change of either ends bit-exact resumption, as a
    # change of --device does.
    dtype: str = option("float32", "precision of the training forward pass and loss: float32, or bf16/fp16 under "
                                   "autocast (weights, optimiser and evaluation stay float32; fp16 on CUDA only)",
                        needs=("steps",), choices=DTYPES, resumable=True)
    compile: bool = option(False, "torch.compile the model for training (evaluation runs it uncompiled); the first "
                                  "steps wait for the compiler (on the CPU, a C++ compiler: g++ or clang++)", needs=("steps",),
                          resumable=True)

    @property
    def eval_every(self) -> int:
        """Steps between evaluations: as asked, or about 20 over the run."""
        return self.eval_interval or max(1, min(2000, self.max_steps // 20))


@dataclass(frozen=True)
class SampleConfig(Config):
    """How `sample` draws items from a trained model."""

    n: int = option(10, "how many items", low=1, high=10**7, short="-n")
    seed: int | None = option(None, "same seed, same items (default: random)", low=0, high=MAX_SEED)
    # below about 1e-30, logits / temperature overflows float32 and the probabilities become NaN
    temperature: float = option(1.0, "below 1: safer, more typical items; above 1: wilder ones", low=1e-6, high=1e6)
    top_k: int | None = option(None, "draw only from the k most likely next characters", low=1, high=MAX_VOCAB)
    top_p: float | None = option(None, "draw only from the most likely characters that hold this much probability",
                                 low=0.0, above=True, high=1.0)
    prefix: str = option("", "continue items that start with this text")
    novel: bool = option(False, "only distinct items not in the training data")
    # constraints (constraints.py): min_len and max_len shape items as they are drawn; suffix,
    # contains, exclude, unique (and novel) keep only the items that meet them
    suffix: str = option("", "only items that end with this text")
    contains: str = option("", "only items that contain this text")
    min_len: int | None = option(None, "items of at least N characters (the end is ruled out before N)", low=1,
                                  high=MAX_ITEM_LENGTH)
    max_len: int | None = option(None, "items of at most N characters (an item is ended at N)", low=1,
                                  high=MAX_ITEM_LENGTH)
    exclude: str | None = option(None, "a file of items, one per line, never to return", metavar="FILE")
    unique: bool = option(False, "no item twice in the output (it remembers every item given, about 100 bytes each, "
                                 "as --novel does)")
    label: str | None = option(None, "a labelled model: items of this label (default: each item's label drawn from the "
                                     "labels' frequencies in the training data)")
    alphabet: str | None = option(None, "items only of these characters (shaped as drawn: the others are ruled out at "
                                        "every step)", metavar="CHARS")
    script: str | None = option(None, "items whose letters are all of this Unicode script (latin, cyrillic, greek, "
                                      "arabic, ...; the first word of each letter's Unicode name); spaces, digits and "
                                      "punctuation stay allowed", metavar="NAME")
    max_draws: int | None = option(None, "draw at most N items in all to find n that meet the filtering constraints "
                                         "(default max(1000, 50 n))", low=1, high=MAX_DRAWS)

    def check(self) -> None:
        if self.min_len is not None and self.max_len is not None and self.min_len > self.max_len:
            raise OptionError(lambda show: f"{show('min_len')} {self.min_len} is more than {show('max_len')} {self.max_len}; "
                                           "no item can meet both")

    @classmethod
    def of(cls, **options) -> "SampleConfig":
        """The options given by name (the Python API's keywords, the page's fields), checked: an unknown
        name is refused with the nearest known one, as a typo must never be silently ignored."""
        for name in options:
            if name not in SAMPLE_OPTIONS:
                raise unknown_option(name, SAMPLE_OPTIONS)
        return cls(**options)

    def seeded(self) -> "SampleConfig":
        """This config with its seed drawn when none was given, so the items it makes can be made again."""
        return self if self.seed is not None else replace(self, seed=draw_seed())


def spelled_out(fn, cls) -> inspect.Signature:
    """`fn`'s signature with its `**options` written out as `cls`'s options, keyword-only, with their
    defaults: what help() and editors show for a function that takes a config's options by name."""
    sig = inspect.signature(fn)
    kept = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    named = {p.name for p in kept}
    hints = typing.get_type_hints(cls)
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt.default, annotation=hints[name])
             for name, opt in options_of(cls).items() if name not in named]
    return sig.replace(parameters=[*kept, *extra])


SEED_DRAWN_BELOW = 2**53  # JSON numbers are doubles in JavaScript: every drawn seed is exact on the page


def draw_seed() -> int:
    """A seed for a run of sampling that was given none (the one place one is drawn)."""
    return random.randrange(SEED_DRAWN_BELOW)


MODEL_OPTIONS = options_of(ModelConfig)
TRAIN_OPTIONS = options_of(TrainConfig)
SAMPLE_OPTIONS = options_of(SampleConfig)
RESUMABLE = tuple(name for name, opt in TRAIN_OPTIONS.items() if opt.spec.resumable)
SWEEP_OPTIONS = ("batch_size", "optimizer", "weight_decay", "seed", "split_seed", "max_item_length")  # what lr-find reads

# The choices of the other arguments, read both by the command line's flags and by the Python API's checks
DEVICES = ("auto", "cpu", "cuda", "mps")  # where tensors live (device.pick_device)
FORMATS = ("txt", "json", "csv")  # how `sample` writes its items (output.py)
PLOT_KINDS = ("loss", "bigram", "embedding", "activations", "gradients", "updates")  # what `plot` draws (plot.py)


def split_options(options: dict) -> tuple[dict, dict]:
    """Keyword options into (model options, training options); an unknown name is an error that
    names the valid ones, so a typo is never silently ignored."""
    for name in options:
        if name not in MODEL_OPTIONS and name not in TRAIN_OPTIONS:
            raise unknown_option(name, [*TRAIN_OPTIONS, *MODEL_OPTIONS])
    model = {k: v for k, v in options.items() if k in MODEL_OPTIONS}
    return model, {k: v for k, v in options.items() if k in TRAIN_OPTIONS}


def resume_changes(changes: dict) -> dict:
    """What a resumed run may change: only the options declared resumable (its limits, and how
    this machine computes: threads, dtype, compile)."""
    fixed = [name for name in changes if name not in RESUMABLE]
    for name in fixed:
        if name not in MODEL_OPTIONS and name not in TRAIN_OPTIONS:
            raise unknown_option(name, RESUMABLE)
    if fixed:
        raise OptionError(lambda show: f"a resumed run continues as it was configured; only {listed(map(show, RESUMABLE))} "
                                       f"may change (drop {', '.join(map(show, fixed))})")
    return changes


def listed(names) -> str:
    """"a", "a and b", "a, b and c"."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
