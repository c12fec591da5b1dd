"""Every declared option on every model: the option x model matrix, generated from config.py's
declarations and the registry, so that a new option or a new model enters it by itself.

For each pair a short training with a valid value other than the model's default must either take
the option into account (config.json records it, and it changes what it should: the figures, for
an option that changes the maths) or be refused before anything is written, in one line that
names the option (MakemoreError in Python; exit 2 and the flag named on the command line). Which of
the two is the option's declaration (`models`, `needs` in config.py, read by models.why_not); the
test checks that what training does agrees with it, and that every option applies somewhere."""

import importlib.util
import json
import shutil
from dataclasses import replace

import pytest
import torch

import makemore
from makemore.checkpoint import CONFIG, METRICS, SUMMARY
from makemore.config import MODEL_OPTIONS, RESUMABLE, TRAIN_OPTIONS, flag
from makemore.errors import MakemoreError
from makemore.models import REGISTRY, get_spec, why_not

QUIET = {"quiet": True, "log": lambda msg: None}
OPTIONS = {**MODEL_OPTIONS, **TRAIN_OPTIONS}
STEPS = 6
# a run of STEPS steps, evaluated twice; dropout from the first step, so that dropout shows in it
BASE = {"max_steps": STEPS, "eval_interval": 3, "dropout_from": 0, "warmup_steps": 0}

# Values for which the generic rule below (half the default, or the other choice) would show no
# effect in a run of STEPS steps, or would take the run past what the test can measure.
TRIALS = {
    "max_steps": STEPS + 2,
    "eval_interval": 2,
    "time_budget": 1e-9,  # spent before the first step
    "dropout_from": 3,  # half way
    "warmup_steps": 3,
    "weight_decay": 0.5,  # large enough to move float32 weights in a few steps
    "ema": 0.2,  # below the ramp's (1 + n) / (10 + n) from the third step: the lstm's 0.9995 is not, yet
    "threads": 3,  # asked of torch, which runs 1 (see patch_threads): more, beside other tests, spin-wait
    "seed": 7,
    "split_seed": 7,
    "diagnostics_interval": 2,
    "order": 3,  # its default (None) is the order of lowest val NLL: 6 on these names
}
# What a needed condition (Spec.needs) takes to hold, for the pairs refused for the lack of it
COMPANIONS = {"dropout": {"dropout": 0.1}, "adamw": {"optimizer": "adamw"}, "diagnostics": {"diagnostics": True}}
# Options whose effect is not in the figures, with what shows it instead (see `effect_shows`)
NOT_MATHS = {"dtype", "threads", "eval_interval", "time_budget", "diagnostics", "diagnostics_interval", "tensorboard", "compile",
             "max_item_length", "fused"}


def trial_value(name: str, default):
    if name in TRIALS:
        return TRIALS[name]
    opt = OPTIONS[name]
    if opt.kind is bool:
        return not default
    if opt.spec.choices:
        return next(c for c in opt.spec.choices if c != default)
    if opt.kind is int:
        return default // 2 if default >= 2 else default + 1
    return default / 2 if default else 0.1


def default_of(name: str, model: str):
    spec = get_spec(model)
    return getattr(spec.config if name in MODEL_OPTIONS else spec.train, name)


def applies(name: str, model: str, options: dict) -> bool:
    """The declaration's verdict for this model with these options set."""
    spec = get_spec(model)
    config = replace(spec.config, **{k: v for k, v in options.items() if k in MODEL_OPTIONS})
    tc = replace(spec.train, **{k: v for k, v in options.items() if k in TRAIN_OPTIONS})
    return why_not(name, model, config, tc) is None


def base_options(model: str) -> dict:
    return {k: v for k, v in BASE.items() if applies(k, model, {})}


def cases() -> list:
    return list(generate_cases())


def generate_cases():
    for name in OPTIONS:
        for model in REGISTRY:
            yield pytest.param(name, model, {}, id=f"{name}-{model}")
            for need in OPTIONS[name].spec.needs:
                companion = COMPANIONS.get(need, {})
                if companion and all(applies(k, model, companion) for k in companion) and not applies(name, model, {}):
                    yield pytest.param(name, model, companion, id=f"{name}-{model}-with-{'-'.join(companion)}")


_runs: dict = {}


def run(model: str, options: dict, data, folder):
    """A short training with the base settings and `options`: the result, config.json, metrics and summary."""
    key = (model, tuple(sorted(options.items())))
    if key not in _runs:
        out = folder / f"{model}-{len(_runs)}"
        result = makemore.train(data=str(data), model=model, out=out, **QUIET, **{**base_options(model), **options})
        _runs[key] = {
            "result": result,
            "config": json.loads((out / CONFIG).read_text()),
            "metrics": [json.loads(line) for line in (out / METRICS).read_text().splitlines()],
            "summary": json.loads((out / SUMMARY).read_text()),
            "out": out,
        }
    return _runs[key]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("matrix")


def cli_args(name: str, value) -> list[str]:
    if isinstance(value, bool):
        return [flag(name) if value else "--no-" + name.replace("_", "-")]
    return [flag(name), str(value)]


@pytest.mark.parametrize("name, model, companion", cases())
def test_every_option_on_every_model_is_used_or_refused(name, model, companion, shared_data, folder, tmp_path, run_cli,
                                                         monkeypatch):
    value = trial_value(name, default_of(name, model))
    assert OPTIONS[name].check(value) == value, f"the trial value {value!r} of {name} is not valid"
    options = {**companion, name: value}

    if not applies(name, model, options):
        out = tmp_path / "refused"
        with pytest.raises(MakemoreError) as caught:
            makemore.train(data=str(shared_data), model=model, out=out, **QUIET, **{**base_options(model), **options})
        message = str(caught.value)
        assert name in message and "\n" not in message, message
        assert not out.exists()
        args = [a for k, v in {**base_options(model), **options}.items() for a in cli_args(k, v)]
        status, _, err = run_cli("train", "--data", shared_data, "--model", model, "--out", out, *args)
        assert status == 2 and err.count("\n") == 1 and flag(name) in err, err
        assert not out.exists()
        return

    asked = []
    if name == "compile":  # the compiler takes a minute a model; that it is asked is what the option decides
        monkeypatch.setattr(torch, "compile", lambda module, **kw: asked.append(module) or module)
    if name == "tensorboard":
        if importlib.util.find_spec("tensorboard") is None:
            with pytest.raises(MakemoreError, match="tensorboard"):
                makemore.train(data=str(shared_data), model=model, out=tmp_path / "tb", **QUIET,
                               **{**base_options(model), **options})
            assert not (tmp_path / "tb").exists()
            return
    fused_calls = None
    if name == "fused":  # the base run (fused) first, so that only the trial's calls are counted, in any test order
        run(model, companion, shared_data, folder)
        fused_calls = count_fused_calls(monkeypatch)
    if name == "threads":
        patch_threads(monkeypatch, asked)
    if name == "dtype":  # bigram-nn's forward is a table lookup, which autocast leaves in float32: no figure moves
        autocast = torch.autocast
        monkeypatch.setattr(torch, "autocast", lambda *a, **k: asked.append(k.get("dtype")) or autocast(*a, **k))

    base, trial = run(model, companion, shared_data, folder), run(model, options, shared_data, folder)
    section = "model_config" if name in MODEL_OPTIONS else "train_config"
    assert trial["config"][section][name] == value
    if name not in NOT_MATHS:
        finals = lambda r: {s: e.nll for s, e in r["result"].final.items()}  # noqa: E731
        assert finals(trial) != finals(base), f"{name}={value!r} changed nothing in {model}'s figures"
        return
    effect_shows(name, value, model, base, trial, asked, fused_calls)


def patch_threads(monkeypatch, asked: list) -> None:
    """Note the threads training asks torch for, and run one: the tests beside share two cores."""
    set_threads = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: asked.append(n) or set_threads(1))


def count_fused_calls(monkeypatch) -> list:
    """Patch the fused recurrent modules' forward to count its calls."""
    calls = []
    for cls in (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU):
        forward = cls.forward
        monkeypatch.setattr(cls, "forward", lambda self, *a, _f=forward, **k: calls.append(1) or _f(self, *a, **k))
    return calls


def effect_shows(name, value, model, base, trial, asked, fused_calls):
    """For an option that does not change the maths, what shows that it was taken into account."""
    if name == "threads":
        assert value in asked and base["summary"]["threads"] != value
    elif name == "eval_interval":
        assert [m["step"] for m in trial["metrics"]] == list(range(value, STEPS + 1, value))
    elif name == "time_budget":
        if get_spec(model).cls.closed_form:  # a bound the counting always meets: recorded, nothing to stop
            assert trial["result"].steps == base["result"].steps == 0
        else:
            assert trial["result"].steps < base["result"].steps == STEPS
    elif name == "diagnostics":
        assert (trial["out"] / "diagnostics.jsonl").exists() and not (base["out"] / "diagnostics.jsonl").exists()
    elif name == "diagnostics_interval":
        steps = lambda r: [json.loads(line)["step"] for line in (r["out"] / "diagnostics.jsonl").read_text().splitlines()]  # noqa: E731
        assert steps(trial) == list(range(0, STEPS, value)) and steps(trial) != steps(base)
    elif name == "tensorboard":
        assert (trial["out"] / "tensorboard").is_dir() and not (base["out"] / "tensorboard").exists()
    elif name == "compile":
        assert asked, "torch.compile was not asked for"
    elif name == "dtype":
        assert asked and set(asked) == {getattr(torch, {"bf16": "bfloat16", "fp16": "float16"}[value])}
    elif name == "max_item_length":  # a limit on the data: recorded; that it refuses longer items is tested below
        assert trial["config"]["train_config"]["max_item_length"] == value
    elif name == "fused":
        assert not fused_calls, "the fused kernel ran with fused=False"
        makemore.load(base["out"]).model(torch.zeros(1, 3, dtype=torch.long))
        assert fused_calls, "the count of the fused kernel's calls counts nothing"  # the check above can fail
    else:
        raise AssertionError(f"no effect check for {name}")


def test_every_option_applies_to_some_model():
    for name in OPTIONS:
        assert any(applies(name, model, {k: v for c in COMPANIONS.values() for k, v in c.items() if applies(k, model, {})})
                   for model in REGISTRY), name


def test_max_item_length_refuses_a_longer_item(shared_data, tmp_path, run_cli):
    longest = max(len(line.strip()) for line in shared_data.read_text().splitlines())
    with pytest.raises(MakemoreError, match="the limit is") as caught:
        makemore.train(data=str(shared_data), model="bigram", out=tmp_path / "run", max_item_length=longest - 1, **QUIET)
    assert "\n" not in str(caught.value) and not (tmp_path / "run").exists()
    status, _, err = run_cli("train", "--data", shared_data, "--model", "bigram", "--out", tmp_path / "run",
                             "--max-item-length", longest - 1)
    assert status == 2 and "--max-item-length" in err


@pytest.mark.parametrize("model", [m for m in REGISTRY if applies("dropout_from", m, {})])
def test_dropout_from_alone_and_with_dropout(model):
    """The needs are conditions on the run, not on the model alone: dropout_from applies to an
    rnn only once it drops."""
    assert applies("dropout_from", model, {"dropout": 0.1})
    assert not applies("dropout_from", model, {"dropout": 0.0, "weight_drop": 0.0})


def test_a_refusal_names_the_flag_on_the_command_line_and_the_keyword_in_python():
    reason = why_not("weight_decay", "mlp", get_spec("mlp").config, get_spec("mlp").train)
    assert "--weight-decay" in reason(flag) and "--optimizer sgd" in reason(flag)
    assert "weight_decay" in reason(str) and "--" not in reason(str)


def test_split_seed_on_the_command_line_trains(shared_data, tmp_path, run_cli):
    """It reached the training options twice, a TypeError traceback (issue 19)."""
    status, out, err = run_cli("train", "--data", shared_data, "--model", "bigram", "--out", tmp_path / "run",
                               "--split-seed", 7, "--samples", 0, "--quiet")
    assert status == 0, err
    assert json.loads((tmp_path / "run" / CONFIG).read_text())["data"]["split_seed"] == 7


@pytest.mark.parametrize("name", RESUMABLE)
@pytest.mark.parametrize("model", [m for m in REGISTRY if not get_spec(m).cls.closed_form])
def test_every_resumable_option_on_every_model_is_used_on_resume(name, model, shared_data, folder, tmp_path, monkeypatch):
    """What --resume may change (config.RESUMABLE) it takes into account: recorded, and acting."""
    value = trial_value(name, default_of(name, model))
    out = tmp_path / "run"
    shutil.copytree(run(model, {}, shared_data, folder)["out"], out)
    asked = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: asked.append(module) or module)
    autocast = torch.autocast
    monkeypatch.setattr(torch, "autocast", lambda *a, **k: asked.append(k.get("dtype")) or autocast(*a, **k))
    more = {} if name in ("max_steps", "time_budget") else {"max_steps": STEPS + 2}  # steps left to act on
    if name == "threads":
        patch_threads(monkeypatch, asked)
    result = makemore.resume(out, **QUIET, **more, **{name: value})
    assert json.loads((out / CONFIG).read_text())["train_config"][name] == value
    if name == "max_steps":
        assert result.steps == value
    elif name == "time_budget":  # the budget is spent already: the run ends where it was
        assert result.steps == STEPS
    elif name == "threads":
        assert value in asked
    elif name == "compile":
        assert asked
    elif name == "dtype":
        assert value == "bf16" and asked and set(asked) == {torch.bfloat16}
    else:
        raise AssertionError(f"no effect check for resuming with {name}")
