"""Training's entry points: from options to a run directory holding the best model, its metrics
and a checkpoint.

`train` resolves the options against the model's registry defaults, checks everything, creates
the run directory and hands over to the loop (training/loop.py); `resume` hands a run directory's
last checkpoint to it. Both report the run as events (training/events.py) to `on_event`, a
function of one event, when given. Under torchrun each process trains on its share of every
batch, and rank 0 alone evaluates, reports and writes (distributed.py); one process is rank 0 of 1.
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import torch

from . import tensorboard
from .store import LOCK, STATE, SUMMARY, RunDir, run_dataset
from .config import (DEVICES, MAX_PARAMS, TRAIN_OPTIONS, ModelConfig, OptionError, TrainConfig, check_flag, check_path,
                     check_text, resume_changes, split_options)
from .data import BUILTIN, DEFAULT_DATA, SPLIT_NAMES, Dataset
from .device import pick_device
from .distributed import Ranks, ranks_of
from .errors import MakemoreError, RunError, WriteFailed
from .models import AUTO, DEFAULT_MODEL, REGISTRY, build, get_spec, model_options, why_not
from .training.loop import TrainResult, train_into
from .training.update import learning_rate, make_optimizer  # noqa: F401 - lrfind's and the benchmarks' way in
from .version import __version__


def resolve_configs(model: str | None, data: Dataset, options: dict) -> tuple[str, ModelConfig, TrainConfig]:
    """The model's registry defaults, then the caller's options (None: keep the default). Unknown
    options, and options the model does not read, are refused: no option is silently ignored."""
    name = model or DEFAULT_MODEL
    spec = get_spec(name)
    given = {k: v for k, v in options.items() if v is not None}
    for_model, for_training = split_options(given)
    unused = [k for k in for_model if k not in model_options(name)]
    if unused:  # all of them at once: a model's wrong options often come together (another model's)
        raise OptionError(lambda show: f"model {name} does not use {', '.join(map(show, unused))}; "
                                       f"see `makemore models` for what it reads")
    config = replace(spec.config, vocab_size=len(data.vocab), max_len=data.max_len, **for_model)
    tc = replace(spec.train, **{**for_training, "split_seed": data.split_seed})  # the split the data was cut with
    check_applies(given, name, config, tc)
    return name, config, tc


def check_applies(given: dict, name: str, config: ModelConfig, tc: TrainConfig) -> None:
    """Refuse an option given for a model or run it does not apply to (models.why_not)."""
    for option in given:
        reason = why_not(option, name, config, tc)
        if reason:
            raise OptionError(reason)


def check_precision(tc: TrainConfig, device: torch.device) -> None:
    """Refuse, before anything is written, a --dtype or --compile this machine cannot run."""
    if tc.dtype == "fp16" and device.type != "cuda":
        raise OptionError(lambda show: f"{show('dtype')} fp16 trains on CUDA GPUs only (it needs a gradient scaler there); "
                                       f"on the {device.type} use bf16 or float32")
    if tc.dtype == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise OptionError(lambda show: f"{show('dtype')} bf16: this GPU has no bfloat16; use fp16 or float32")
    if tc.compile and device.type == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        raise OptionError(lambda show: f"{show('compile')} on the CPU needs a C++ compiler (g++ or clang++), and none is "
                                       "on the PATH; install one or train without it")


def check_size(name: str, config: ModelConfig) -> None:
    """Count the parameters on the meta device (no memory) and refuse a model too big to hold."""
    with torch.device("meta"):
        n = build(name, config).num_params()
    if n > MAX_PARAMS:
        raise MakemoreError(f"{name} with these options and a vocabulary of {config.vocab_size:,} tokens has {n:,} "
                            f"parameters, more than the {MAX_PARAMS:,} makemore allows; make --n-embd, --n-hidden, "
                            "--n-layer or --block-size smaller, or use data with fewer distinct characters")


def run_config(name: str, config: ModelConfig, tc: TrainConfig, data: Dataset, source: str, n_params: int) -> dict:
    """What config.json holds: enough to rebuild the vocabulary, the model and its data split."""
    return {
        "makemore_version": __version__,
        "model": name,
        "model_config": config.to_dict(),
        "train_config": tc.to_dict(),
        "vocab": data.vocab.alphabet,
        "labels": data.vocab.labels,  # empty for unlabelled data
        "params": n_params,
        "data": {
            "source": source,
            "fingerprint": data.fingerprint,
            "items": data.n_items,
            "split_seed": data.split_seed,
            "split": {s: {"items": data.split_size(s), "chars": data.packed(s).chars} for s in SPLIT_NAMES},
            "label_counts": data.label_counts("train"),  # the labels' prior: their frequencies in the training split
        },
    }


def data_source(given: str | None, data: Dataset) -> str:
    """How config.json names the data: a built-in name, or an absolute path."""
    given = given or DEFAULT_DATA
    return given if given in BUILTIN else str(data.path.resolve())


def train(
    data: str | None = None,
    model: str | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    force: bool = False,
    quiet: bool = False,
    log=print,
    on_event=None,
    **options,
) -> TrainResult:
    """Train a model on a file of lines (or a built-in dataset) into the run directory `out`.
    `model="auto"`: the ngram, then a neural model picked for the data and the budget, the one of
    lower val NLL kept (auto.py; it takes only the options in auto.AUTO_OPTIONS).

    `options` are ModelConfig options (n_embd=64, batchnorm=True, ...) and TrainConfig options
    (max_steps=1000, lr=0.1, split_seed=42, ...); unset ones take the model's registry defaults.
    An unknown option, a value of the wrong type or out of range raises MakemoreError, before
    anything is written. `on_event`, a function of one event (training/events.py), hears the run
    as it goes; `event.stop()` ends it after that step as Ctrl-C does, and an exception it raises
    ends the run the same way and is raised again once the run directory is whole.
    """
    check_path("data", data)
    check_text("model", model)
    check_path("out", out)
    check_common(device, quiet, log, on_event)
    check_flag("force", force)
    if model == AUTO:  # not a registry model: it trains registry models (auto.py)
        from .auto import train_auto

        return train_auto(data, out, device, force, quiet, log, on_event, **options)
    return train_on(load_data(data, options), data, model, out, device, force, quiet, log, on_event, **options)


def train_on(dataset: Dataset, data: str | None, model: str | None, out, device: str, force: bool, quiet: bool, log,
             on_event, **options) -> TrainResult:
    """`train` on data already read and split (`dataset`, from `data`), its arguments checked."""
    name, config, tc = resolve_configs(model, dataset, options)
    if tc.tensorboard:
        tensorboard.require()
    dev = pick_device(device)
    check_precision(tc, dev)
    check_size(name, config)
    run = RunDir(out or Path("runs") / name)
    with ranks_of(dev) as ranks, ExitStack() as held:
        check_batch(tc, ranks)
        ranks.on_main(lambda: run.check_new(force, dataset.path))  # rank 0 alone looks at and writes the run directory
        note = dataset.note()
        if note and ranks.main:
            log(f"makemore: note: {note}")

        torch.manual_seed(tc.seed)
        net = build(name, config).to(ranks.device)
        ranks.seed_dropout(tc.seed)
        made: list[Path] = []  # the lock file and folders this run made, which a failure before its first checkpoint removes
        ours = False  # whether the run directory is this run's: locked, and checked again under the lock

        def create():
            # the run directory appears only once everything above has been checked
            nonlocal ours
            made.extend(run.make())
            if not run.file(LOCK).exists():
                made.insert(0, run.file(LOCK))
            held.enter_context(run.lock())
            run.check_new(force, dataset.path)  # again, holding the lock: another process may have started here meanwhile
            ours = True
            run.create(run_config(name, config, tc, dataset, data_source(data, dataset), net.num_params()))

        try:
            ranks.on_main(create)
            return train_into(run, net, dataset, tc, ranks, quiet, log, on_event)
        except BaseException as e:
            if not ours:
                raise
            if not run.file(STATE).exists() and not run.file(SUMMARY).exists():
                # a new run that stopped before its first checkpoint holds nothing to resume or keep: it goes,
                # rather than stay a folder that looks like a run but has no model
                run.discard(made)
            if isinstance(e, WriteFailed):
                raise said_of_the_run(e, run) from None
            raise


def check_batch(tc: TrainConfig, ranks: Ranks) -> None:
    """Each of several processes needs a row of every batch."""
    if tc.batch_size < ranks.world:
        raise OptionError(lambda show: f"{show('batch_size')} {tc.batch_size} is fewer rows than the {ranks.world} processes "
                                       "training together; each needs at least one")


def load_data(data: str | None, options: dict) -> Dataset:
    """Read and split the data with the options that shape it, checked before the file is read."""
    split_options(options)  # a typo fails before the data is read
    shape = {name: options.get(name) for name in ("split_seed", "max_item_length")}
    shape = {name: TRAIN_OPTIONS[name].default if v is None else TRAIN_OPTIONS[name].check(v) for name, v in shape.items()}
    return Dataset.load(data, shape["split_seed"], max_item_chars=shape["max_item_length"])


def resume(run_path: str | Path, device: str = "auto", quiet: bool = False, log=print, on_event=None,
           **changes) -> TrainResult:
    """Continue a run from its last checkpoint. `changes` may set only the options declared
    resumable in config.py (config.RESUMABLE: its limits and how the machine computes): a run
    continues as it was configured. `on_event` as for `train`."""
    changes = resume_changes({k: v for k, v in changes.items() if v is not None})
    check_path("run_path", run_path, optional=False)
    check_common(device, quiet, log, on_event)
    run = RunDir(run_path)
    run.read_config(REGISTRY)  # a clear error for a missing or foreign directory before locking anything in it
    dev = pick_device(device)
    with ranks_of(dev) as ranks, ExitStack() as held:

        def take_over() -> dict:
            held.enter_context(run.lock())
            saved = run.read_config(REGISTRY)  # config.json, as a dict
            if not run.file(STATE).exists():
                raise RunError(f"{run.path} has no checkpoint to resume from ({STATE}); start a new run with the same options")
            tc = replace(TrainConfig.from_dict(saved["train_config"]), **changes)
            check_applies(changes, saved["model"], ModelConfig.from_dict(saved["model_config"]), tc)
            if tc.tensorboard:
                tensorboard.require()
            check_precision(tc, dev)
            saved["train_config"] = tc.to_dict()
            return saved

        saved = ranks.on_main(take_over)  # rank 0 alone locks and checks the run directory; every rank gets its config
        dataset = run_dataset(saved, advice="put the original file back where it was")
        tc = TrainConfig.from_dict(saved["train_config"])
        check_batch(tc, ranks)
        net = build(saved["model"], ModelConfig.from_dict(saved["model_config"])).to(ranks.device)
        try:
            if ranks.main:
                run.write_config(saved)
            return train_into(run, net, dataset, tc, ranks, quiet, log, on_event, resume=True)
        except WriteFailed as e:
            raise said_of_the_run(e, run) from None


def check_common(device, quiet, log, on_event) -> None:
    """The arguments train and resume share, besides the options."""
    check_text("device", device, optional=False, choices=DEVICES)
    check_flag("quiet", quiet)
    if not callable(log):
        raise MakemoreError(f"log must be a function of one message, such as print (got {log!r:.60})")
    if on_event is not None and not callable(on_event):
        raise MakemoreError(f"on_event must be a function of one event, or None (got {on_event!r:.60})")


def said_of_the_run(e: WriteFailed, run: RunDir) -> WriteFailed:
    """A write that failed during training, with what the run directory holds now and what to do:
    a full disk leaves the last checkpoint as it was (every write is atomic, and a cut append is
    cut back off), so once there is space `--resume` goes on from it; a new run that had none was
    discarded."""
    if not run.file(STATE).exists():
        return WriteFailed(e.path, e.error, "the run had no checkpoint yet, so nothing of it was kept; "
                                            + ("free some space and train again" if e.full else "fix that and train again"))
    todo = "the run directory is as its last checkpoint left it; "
    todo += "free some space, then" if e.full else "fix that, then"
    return WriteFailed(e.path, e.error, todo + f" `makemore train --resume {run.path}` goes on from there")
