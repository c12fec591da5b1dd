"""`--model auto`: the right model for this list and this budget, never worse than the n-gram.

An anytime method. The Kneser-Ney n-gram is fitted first (well under a second on 32,033 names) and
kept as the answer; then, if the budget leaves room, one neural model picked by a rule (`plan`) from
the data and the budget trains in what is left, and replaces the n-gram only if its val NLL is lower
by more than the noise of a short val split (`val_margin`).
The budget is --time-budget (the n-gram's fit and evaluation count against it), or --max-steps (the
neural model's steps); with neither, DEFAULT_BUDGET seconds.

Each candidate trains as an ordinary run into a folder of its own beside the run directory
(`.OUT.auto-*`); the one kept, with config.json's "choice" saying which and why, is renamed into
place when both are done, so the run directory is an ordinary run of the chosen model (sample, eval
and --resume work on it as on any), never half of one. Ctrl-C during the neural model's training
keeps the better of the n-gram and the neural model's best so far. When the neural model's val NLL has
not improved in STALL_EVALUATIONS evaluations, auto ends it there, as a spent budget would. `on_event` hears the n-gram's
fit, then the neural run; its `event.stop()` ends whichever is running, and auto with it.

auto picks the model and its settings, so it takes only the options that say what to train on and
for how long (AUTO_OPTIONS); any other option is refused before anything is trained, since it
would not apply to every model auto may pick.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from .config import SPLIT_NAMES, TRAIN_OPTIONS, OptionError, listed, split_options
from .errors import Diverged, secondary_rank, world_size
from .evaluate import EvalResult
from .store import CONFIG, LOCK, SUMMARY, TEMPORARY, TRAINING_OUTPUTS, RunDir, read_json, write_json
from .training.events import Event
from .training.loop import TrainResult
from .training.report import STALLED, Plateau

DEFAULT_BUDGET = 60.0  # seconds, with neither --time-budget nor --max-steps: a minute buys most of a short list's gain
AUTO_OPTIONS = ("time_budget", "max_steps", "seed", "split_seed", "max_item_length", "threads", "tensorboard")
FOR_EVERY_RUN = ("split_seed", "max_item_length", "threads", "tensorboard")  # the n-gram's too; the rest the neural's
MIN_SECONDS = 3.0  # left after the n-gram: below it no neural model is started
STALL_EVALUATIONS = STALLED  # evaluations without a better val NLL after which auto ends the neural run (the log says so too)
# standard errors of the val NLL difference by which the neural model must beat the n-gram (val_margin): its val
# figure is the best of many checkpoints, so lower than its worth. At 1, on 3,308 first names at 60 s, lstm-small
# was kept 1.55 standard errors below the n-gram on val and came out 0.022 worse on test; on names.txt, kept at
# 3.9 (60 s) and 13 (300 s), it was 0.027 and 0.066 better
MARGIN_Z = 2.0
NGRAM: dict = {}  # the n-gram candidate's options (none: its order chosen on val); tests give it a poor one

# The rule, from benchmarks/auto.py's table (benchmarks/results/auto.md: five lists built from PyPI
# packages and names.txt, 249 to 234,450 lines, every family at one or two sizes, 10/60/300 s, one thread):
# - the n-gram was the best of the zoo at 10 s on every list but the 249 countries (where gru tied it,
#   2.432 against 2.438), and at 60 s on all but names.txt, where lstm at one layer of 256 ("lstm-small")
#   beat it, 1.946 against 1.978; at 300 s on 32,148 cities it still led (2.266 against lstm-small's 2.363).
#   A neural model beats it only past some budget, which grows with the data, as the n-gram gets better
#   with more of it. A try that loses costs only time (the n-gram stays), so the bar is low: below it
#   auto keeps the n-gram at once.
# - lstm-small was the best neural model at 60 s on every list of over 3,000 lines, and at 300 s on the
#   cities (the registry's two-layer lstm of 384, 2.467 there, is too slow for a budget on one thread);
#   on the 249 countries (2,200 characters of training split) gru was, at 10 and 60 s.
# - with 300 s or more, or --max-steps of 8,000 or more, on a list of 100,000 training characters or
#   more, the registry's lstm: on names.txt at 300 s 1.909 against lstm-small's 1.946 (which had reached
#   its 16,000 steps in 244 s), and 1.899 after 16,000 steps (benchmarks/results/models.md), the zoo's best.
SECONDS_AT = 6.0  # seconds the neural model needs at REFERENCE_CHARS, growing as their square root
STEPS_AT = 100  # steps, likewise
REFERENCE_CHARS = 20_000  # about 3,000 names' characters of training split
SMALL_CHARS = 5_000  # below it, gru
LONG_CHARS = 100_000  # from here, with LONG_SECONDS of budget or LONG_STEPS steps (or both), the registry's lstm
LONG_SECONDS = 300.0
LONG_STEPS = 8_000
CANDIDATES = {"gru": ("gru", {}), "lstm-small": ("lstm", {"n_hidden": 256, "n_layer": 1}), "lstm": ("lstm", {})}
RULE = ("a neural model only with at least {seconds:g} s x sqrt(chars / {ref:,}) (and {min:g} s left after the n-gram), "
        "or {steps} x sqrt(chars / {ref:,}) steps; gru below {small:,} training characters, the registry's lstm from "
        "{long:,} with at least {long_seconds:g} s or {long_steps:,} steps, else lstm-small (lstm, n_hidden 256, n_layer 1)")


def candidate(name: str) -> tuple[str, dict]:
    """A planned candidate's model and its options (a name of the registry: itself, as its defaults)."""
    return CANDIDATES.get(name, (name, {}))


def check_options(options: dict) -> None:
    """Refuse, before anything is read, an option auto does not take (every option it takes applies
    to every model it may pick)."""
    split_options(options)  # an unknown name: the nearest known one
    given = [name for name, value in options.items() if value is not None and name not in AUTO_OPTIONS]
    if given:
        raise OptionError(lambda show: (f"--model auto picks the model and its settings itself, so it takes only "
                                        f"{listed(map(show, AUTO_OPTIONS))}; drop {', '.join(map(show, given))}, or "
                                        "choose the model yourself (see `makemore models`)"))


def figures(dataset, time_budget: float | None, max_steps: int | None) -> dict:
    """What the rule reads: the training split's size, the vocabulary, the longest item, the labels, the budget."""
    train = dataset.packed("train")
    return {"items": len(dataset.splits["train"]), "chars": train.chars, "vocab": len(dataset.vocab.alphabet),
            "longest": dataset.max_len, "labels": len(dataset.vocab.labels), "time_budget": time_budget,
            "max_steps": max_steps}


def plan(f: dict) -> str | None:
    """The neural candidate (CANDIDATES) to train after the n-gram, or None: from the figures alone, so
    the same data and budget make the same choice (a --time-budget counts as given, not as what the n-gram left)."""
    seconds, steps, scale = f["time_budget"], f["max_steps"], math.sqrt(f["chars"] / REFERENCE_CHARS)
    if (seconds is not None and seconds < max(MIN_SECONDS, SECONDS_AT * scale)) or (steps is not None and steps < STEPS_AT * scale):
        return None
    if f["chars"] < SMALL_CHARS:
        return "gru"
    long = (seconds is None or seconds >= LONG_SECONDS) and (steps is None or steps >= LONG_STEPS)
    return "lstm" if long and f["chars"] >= LONG_CHARS else "lstm-small"


def rule_text() -> str:
    return RULE.format(seconds=SECONDS_AT, ref=REFERENCE_CHARS, min=MIN_SECONDS, steps=STEPS_AT, small=SMALL_CHARS,
                       long=LONG_CHARS, long_seconds=LONG_SECONDS, long_steps=LONG_STEPS)


def train_auto(data, out, device, force, quiet, log, on_event, **options) -> TrainResult:
    """`makemore.train(model="auto", ...)`, its arguments checked (trainer.train): the n-gram into
    a folder beside `out`, then the planned neural model into another, the better renamed to `out`."""
    from .trainer import load_data, train_on

    check_options(options)
    if world_size() > 1 or secondary_rank():
        raise OptionError(lambda show: "--model auto trains in one process; drop --nproc")
    time_budget = TRAIN_OPTIONS["time_budget"].check(options["time_budget"]) if options.get("time_budget") is not None else None
    max_steps = TRAIN_OPTIONS["max_steps"].check(options["max_steps"]) if options.get("max_steps") is not None else None
    if time_budget is None and max_steps is None:
        time_budget = DEFAULT_BUDGET
    began = time.perf_counter()
    dataset = load_data(data, options)
    out = Path(out or Path("runs") / "auto")
    run = RunDir(out)
    run.check_new(force, dataset.path)  # a folder holding only its data (the page's runs) is new
    facts = figures(dataset, time_budget, max_steps)
    planned = plan(facts)
    common = {k: v for k, v in options.items() if k in FOR_EVERY_RUN and v is not None}
    stopped, setting_up = [], {}

    stall = Stall()  # the running candidate's (train_candidate starts each with a new one)

    def hear(event: Event) -> None:  # the caller's on_event, if any; its stop() ends auto too
        if event.kind == "started":
            setting_up["seconds"] = time.perf_counter() - setting_up.pop("from")
        elif event.kind == "evaluated" and stall.stalled(event):
            event.end()  # as if the budget were spent: the rest of it would not buy a better model
        if on_event is not None:
            inner = event._stopper
            event._stopper = lambda: (stopped.append(True), inner())
            on_event(event)

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.auto-", dir=out.parent))
    candidates: dict[str, dict] = {}
    failure: BaseException | None = None

    def train_candidate(name: str, **extra) -> None:
        folder = work / name
        said = lambda msg: None if msg.startswith("interrupted at step") else log(msg.replace(str(folder), str(out)))  # noqa: E731
        nonlocal stall
        setting_up["from"], stall = time.perf_counter(), Stall()
        model, options = candidate(name)
        try:
            train_on(dataset, data, model, folder, device, False, quiet, said, hear, **common, **options, **extra)
        finally:
            summary = RunDir(folder).read_summary() if folder.exists() else None
            if summary is not None:  # a whole run: finished, interrupted, or diverged with a model kept
                candidates[name] = {"val_nll": round(summary["val"]["nll"], 6), "steps": summary["step"],
                                    "seconds": summary["seconds"], "interrupted": summary["interrupted"]}
                if name == "ngram":
                    candidates[name]["order"] = read_json(folder / CONFIG)["model_config"]["order"]
                elif stall.note:
                    candidates[name]["stopped_early"] = stall.note

    try:
        trained = None
        try:
            train_candidate("ngram", **NGRAM)
            if planned:
                warm_up(candidate(planned)[0], dataset)
            # a run's --time-budget counts from its first step: what setting a run up took (the n-gram's) is taken off too
            left = None if time_budget is None else time_budget - (time.perf_counter() - began) - setting_up["seconds"]
            if planned and not stopped and (left is None or left >= MIN_SECONDS):
                trained = planned
                extra = {"seed": options.get("seed"), "max_steps": max_steps, "time_budget": left}
                train_candidate(planned, **{k: v for k, v in extra.items() if v is not None})
        except Diverged:
            pass  # the neural model's best before it, if it kept one, is a candidate still
        except BaseException as e:  # Ctrl-C, on_event's exception: keep the best there is, then raise it
            failure = e
        if "ngram" not in candidates:
            raise failure  # stopped before the n-gram was whole: nothing to keep
        margin = val_margin(dataset, work, trained, device) if trained in candidates else None
        beats = margin is not None and candidates[trained]["val_nll"] < candidates["ngram"]["val_nll"] - margin
        chosen = trained if beats else "ngram"
        choice = {"by": f"the n-gram first, then a neural model picked by the rule, kept only if its val NLL is lower by "
                        f"more than {MARGIN_Z:g} standard errors of the difference",
                  "rule": rule_text(), "figures": facts, "planned": planned, "trained": trained,
                  "candidates": candidates, **({"margin": round(margin, 6)} if margin is not None else {}),
                  "chosen": chosen, "why": why(chosen, candidates, planned, trained, margin)}
        folder = work / chosen
        config = read_json(folder / CONFIG)
        write_json(folder / CONFIG, {**config, "choice": {**config.get("choice", {}), "model": choice}})
        summary = {**read_json(folder / SUMMARY), "choice": {"model": chosen, "why": choice["why"]}}
        write_json(folder / SUMMARY, summary)
        install(folder, out, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failure is not None:
        raise failure
    interrupted = bool(stopped) or any(c["interrupted"] for c in candidates.values())
    final = {s: EvalResult(s, **{k: summary[s][k] for k in ("nll", "bits_per_char", "perplexity", "chars", "items")},
                           sample=summary[s].get("sample"))
             for s in SPLIT_NAMES}
    return TrainResult(out, summary["step"], time.perf_counter() - began, final, interrupted,
                       summary.get("final_evaluation_seconds", 0.0), choice)


class Stall:
    """Whether val NLL has stopped improving: STALL_EVALUATIONS evaluations in a row without a new best
    (the log's Plateau), said once in `note`."""

    def __init__(self):
        self.plateau, self.note = Plateau(), None

    def stalled(self, event) -> bool:
        plateau = self.plateau
        plateau.heard(event)
        if plateau.since < STALL_EVALUATIONS or self.note:
            return False
        self.note = (f"stopped early at step {event.step:,}: val NLL had not improved in {plateau.since} evaluations, "
                     f"since step {plateau.best_step:,} ({plateau.best:.4f})")
        return True


def warm_up(name: str, dataset) -> None:
    """Build the model once, with its optimiser: the first of a process imports parts of PyTorch (about
    1.3 s for fused AdamW here), which a run's own --time-budget, counted from its first step, leaves out."""
    from .models import build, get_spec
    from .training.update import make_optimizer

    spec = get_spec(name)
    make_optimizer(build(name, replace(spec.config, vocab_size=len(dataset.vocab), max_len=dataset.max_len)), spec.train)


def val_margin(dataset, work: Path, trained: str, device) -> float:
    """How much lower the neural model's val NLL must be than the n-gram's to be kept: MARGIN_Z
    standard errors of the difference of the two, per character, paired by item (each item's NLL
    under both models). On 25 items of val (249 country names) a model 0.1 nats better on val was
    once 0.1 worse on test; on 23,000 items the margin is a few thousandths."""
    from .api import load
    from .evaluate import item_nll

    val = dataset.packed("val")
    ngram, neural = (item_nll((m := load(work / name, device=device or "auto").model), val.to(m.device)).cpu()
                     for name in ("ngram", trained))
    if len(val) < 2:
        return 0.0
    return MARGIN_Z * float((ngram - neural).std()) * math.sqrt(len(val)) / val.chars


def why(chosen: str, candidates: dict, planned: str | None, trained: str | None, margin: float | None = None) -> str:
    """One line: the model kept, its val NLL and what it was measured against."""
    ngram = candidates["ngram"]["val_nll"]
    if chosen != "ngram":
        return (f"kept {chosen}: val NLL {candidates[chosen]['val_nll']:.4f}, below the ngram's {ngram:.4f} by more "
                f"than {margin:.4f} ({MARGIN_Z:g} standard errors)")
    kept = f"kept the ngram (order {candidates['ngram']['order']}): val NLL {ngram:.4f}"
    if trained in candidates:
        return (f"{kept}; {trained}'s {candidates[trained]['val_nll']:.4f} is not below it by more than {margin:.4f} "
                f"({MARGIN_Z:g} standard errors)")
    if trained:
        return f"{kept}; {trained} stopped before it had a model"
    if planned:
        return f"{kept}; the budget left no time for {planned}"
    return f"{kept}; the budget is too small for a neural model to beat it (the rule)"


def install(folder: Path, out: Path, work: Path) -> None:
    """Rename the kept run into place. A run there before (--force, or one never started) goes
    aside first, and any file of the user's in it comes back, as `RunDir.create` keeps them."""
    old = None
    if out.exists() or out.is_symlink():
        old = work / "replaced"
        os.rename(out, old)
    os.rename(folder, out)
    if old is not None and old.is_dir():
        ours = {CONFIG, LOCK, *TRAINING_OUTPUTS}
        for path in old.iterdir():
            if path.name not in ours and not TEMPORARY.fullmatch(path.name) and not (out / path.name).exists():
                os.rename(path, out / path.name)
