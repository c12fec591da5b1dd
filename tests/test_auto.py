"""`--model auto`: the n-gram first, then a neural model picked by a rule, kept only if its val NLL is
lower; the run directory an ordinary run of the model kept, with config.json's "choice" saying why."""

import dataclasses
import json
import math
import time

import pytest

import makemore
from makemore import auto
from makemore.config import MODEL_OPTIONS, TRAIN_OPTIONS, OptionError
from makemore.errors import MakemoreError
from makemore.models import get_spec, why_not

QUIET = {"quiet": True, "log": lambda msg: None}


def config_of(run) -> dict:
    return json.loads((run / "config.json").read_text())


def no_leftovers(folder) -> bool:
    return not [p for p in folder.iterdir() if ".auto-" in p.name]


@pytest.fixture
def poor_ngram(monkeypatch):
    """An n-gram of order 1 (the characters' frequencies), which a neural model beats in a few steps."""
    monkeypatch.setattr(auto, "NGRAM", {"order": 1})


def test_the_same_data_and_steps_make_the_same_choice(small_data, tmp_path):
    choices = []
    for name in ("a", "b"):
        makemore.train(data=str(small_data), model="auto", out=tmp_path / name, max_steps=120, **QUIET)
        choice = config_of(tmp_path / name)["choice"]["model"]
        for candidate in choice["candidates"].values():
            candidate.pop("seconds")
        choices.append(choice)
    assert choices[0] == choices[1]
    assert choices[0]["planned"] == auto.plan(choices[0]["figures"]) and choices[0]["trained"] == choices[0]["planned"]
    assert set(choices[0]["candidates"]) == {"ngram", choices[0]["planned"]}


def test_it_never_keeps_a_model_worse_than_the_ngram(small_data, tmp_path):
    result = makemore.train(data=str(small_data), model="auto", out=tmp_path / "run", max_steps=100, **QUIET)
    config = config_of(tmp_path / "run")
    choice = config["choice"]["model"]
    vals = {name: c["val_nll"] for name, c in choice["candidates"].items()}
    neural = choice["trained"]
    assert neural in vals and choice["margin"] > 0  # the small list's 30 val items: a margin of noise
    kept = vals[neural] < vals["ngram"] - choice["margin"]
    assert choice["chosen"] == config["model"] == (neural if kept else "ngram")
    assert vals[config["model"]] <= vals["ngram"]
    assert result.final["val"].nll == pytest.approx(vals[config["model"]], abs=1e-6)
    assert result.choice == choice
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["choice"] == {"model": choice["chosen"], "why": choice["why"]}
    assert no_leftovers(tmp_path)


@pytest.fixture
def weak_neural(monkeypatch):
    """The rule picks bigram-nn, trained by steps but a bigram: it cannot reach the n-gram of order 6."""
    monkeypatch.setattr(auto, "plan", lambda figures: "bigram-nn")


def test_the_ngram_is_kept_when_the_neural_model_does_worse(small_data, tmp_path, weak_neural):
    makemore.train(data=str(small_data), model="auto", out=tmp_path / "run", max_steps=100, **QUIET)
    config = config_of(tmp_path / "run")
    assert config["model"] == "ngram"
    assert config["choice"]["order"]["chosen"] == config["model_config"]["order"]  # the ngram's own choice, kept
    assert "kept the ngram" in config["choice"]["model"]["why"] and "bigram-nn" in config["choice"]["model"]["candidates"]
    assert makemore.load(tmp_path / "run").sample(3, seed=0)


def test_a_neural_model_that_does_better_replaces_it_and_resumes_as_any_run(small_data, tmp_path, poor_ngram, monkeypatch):
    monkeypatch.setattr(auto, "STALL_EVALUATIONS", 10**6)  # on 240 names gru's val NLL stalls before step 150
    out = tmp_path / "run"
    result = makemore.train(data=str(small_data), model="auto", out=out, max_steps=150, **QUIET)
    config = config_of(out)
    assert result.choice["chosen"] == result.choice["planned"] != "ngram"
    assert config["model"] == auto.candidate(result.choice["chosen"])[0]
    assert (out / "state.safetensors").exists() and result.steps == 150
    resumed = makemore.resume(out, max_steps=160, **QUIET)
    assert resumed.steps == 160 and config_of(out)["model"] == config["model"]
    assert config_of(out)["choice"] == config["choice"]  # what auto chose stays said


def test_a_kept_ngram_resumes_as_an_ngram_run_does(small_data, tmp_path, weak_neural):
    makemore.train(data=str(small_data), model="auto", out=tmp_path / "run", max_steps=100, **QUIET)
    assert config_of(tmp_path / "run")["model"] == "ngram"
    makemore.train(data=str(small_data), model="ngram", out=tmp_path / "plain", **QUIET)
    said = []
    for name in ("run", "plain"):
        with pytest.raises(MakemoreError) as e:
            makemore.resume(tmp_path / name, **QUIET)
        said.append(str(e.value).replace(str(tmp_path / name), "RUN"))
    assert said[0] == said[1]


def test_it_keeps_to_the_time_budget_the_ngram_included(small_data, tmp_path):
    budget, final = 6.0, []

    def hear(event):  # when the last run's final evaluation began: after the budget, as for any --time-budget run
        if event.kind == "started":
            final.clear()
        if event.kind == "evaluating" and event.final and not final:
            final.append(time.perf_counter())

    began = time.perf_counter()
    result = makemore.train(data=str(small_data), model="auto", out=tmp_path / "run", time_budget=budget, on_event=hear,
                            **QUIET)
    assert result.choice["trained"] and result.choice["figures"]["time_budget"] == budget
    assert final[0] - began <= budget * 1.05 + 0.3


def test_too_small_a_budget_keeps_the_ngram_alone(small_data, tmp_path):
    result = makemore.train(data=str(small_data), model="auto", out=tmp_path / "run", max_steps=10, **QUIET)
    assert result.choice["planned"] is None and set(result.choice["candidates"]) == {"ngram"}
    assert config_of(tmp_path / "run")["model"] == "ngram" and result.steps == 0


def test_stop_keeps_the_better_of_what_there_is(small_data, tmp_path, poor_ngram):
    def hear(event):
        if event.kind == "step" and event.step == 60:
            event.stop()

    result = makemore.train(data=str(small_data), model="auto", out=tmp_path / "run", max_steps=1000,
                            on_event=hear, **QUIET)
    assert result.interrupted and result.steps == 60
    choice = config_of(tmp_path / "run")["choice"]["model"]
    assert choice["candidates"][choice["trained"]]["interrupted"] and choice["chosen"] == choice["trained"]
    assert no_leftovers(tmp_path)


def test_an_on_event_that_raises_comes_out_once_the_run_is_whole(small_data, tmp_path):
    def hear(event):
        if event.kind == "fitted":
            raise ValueError("no thanks")

    with pytest.raises(ValueError, match="no thanks"):
        makemore.train(data=str(small_data), model="auto", out=tmp_path / "run", max_steps=200, on_event=hear, **QUIET)
    assert config_of(tmp_path / "run")["model"] == "ngram" and makemore.load(tmp_path / "run").sample(2, seed=0)
    assert no_leftovers(tmp_path)


@pytest.mark.parametrize("option", [{"n_embd": 8}, {"lr": 0.01}, {"order": 3}, {"eval_interval": 10}])
def test_an_option_auto_does_not_take_is_refused_before_anything_is_written(small_data, tmp_path, option):
    with pytest.raises(OptionError, match="--model auto picks the model") as e:
        makemore.train(data=str(small_data), model="auto", out=tmp_path / "run", max_steps=100, **option, **QUIET)
    assert next(iter(option)) in str(e.value)
    assert not (tmp_path / "run").exists() and no_leftovers(tmp_path)


def test_the_command_line_refuses_it_in_one_line_and_says_what_it_kept(run_cli, small_data, tmp_path):
    status, out, err = run_cli("train", "--model", "auto", "--data", small_data, "--out", tmp_path / "x", "--n-embd", "8")
    assert status == 2 and err.count("\n") == 1 and "--n-embd" in err and "--model auto" in err
    status, out, err = run_cli("train", "--model", "auto", "--data", small_data, "--out", tmp_path / "run",
                               "--max-steps", "100", "--quiet", "--samples", "0")
    assert status == 0 and "auto kept " in out
    assert not (tmp_path / "x").exists()


def test_an_existing_run_is_replaced_only_with_force_and_a_file_of_the_users_stays(small_data, tmp_path):
    out = tmp_path / "run"
    makemore.train(data=str(small_data), model="gru", out=out, max_steps=4, **QUIET)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(MakemoreError, match="already exists"):
        makemore.train(data=str(small_data), model="auto", out=out, max_steps=10, **QUIET)
    assert config_of(out)["model"] == "gru"
    makemore.train(data=str(small_data), model="auto", out=out, max_steps=10, force=True, **QUIET)
    assert config_of(out)["model"] == "ngram" and (out / "notes.txt").read_text() == "mine"
    assert not (out / "state.safetensors").exists()  # nothing of the gru run is left beside the ngram's
    assert no_leftovers(tmp_path)


def test_models_and_help_mention_auto(run_cli):
    status, out, _ = run_cli("models")
    assert status == 0 and "\nauto " in out
    status, out, _ = run_cli("train", "--help")
    assert "or auto:" in " ".join(out.split())


@pytest.mark.parametrize("chars, seconds, steps, family", [
    (2_000, 10.0, None, "gru"), (20_000, 5.0, None, None), (20_000, 10.0, None, "lstm-small"), (180_000, 10.0, None, None),
    (180_000, 60.0, None, "lstm-small"), (180_000, 600.0, None, "lstm"), (180_000, 200.0, None, "lstm-small"), (180_000, None, 10_000, "lstm"),
    (180_000, 600.0, 1_000, "lstm-small"), (180_000, 600.0, 10_000, "lstm"), (20_000, None, 10_000, "lstm-small"), (2_000, 2.0, None, None),
    (2_000, None, 20, None), (2_000, None, 40, "gru"),
])
def test_the_rule(chars, seconds, steps, family):
    figures = {"items": 100, "chars": chars, "vocab": 26, "longest": 10, "labels": 0, "time_budget": seconds,
               "max_steps": steps}
    assert auto.plan(figures) == family


@pytest.mark.parametrize("name", [n for n in (*MODEL_OPTIONS, *TRAIN_OPTIONS) if n not in auto.AUTO_OPTIONS])
def test_every_other_option_is_refused_by_name(name, tmp_path):
    with pytest.raises(OptionError, match="--model auto picks the model") as e:
        makemore.train(model="auto", out=tmp_path / "run", **{name: 1}, **QUIET)
    assert name in str(e.value) and not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", auto.AUTO_OPTIONS)
def test_what_auto_takes_applies_to_every_model_it_passes_it_to(name):
    families = {auto.plan({"chars": chars, "time_budget": seconds, "max_steps": None})
                for chars in (1_000, 10**6) for seconds in (10.0, 60.0, 1e4)} - {None}
    receivers = [*(auto.candidate(f)[0] for f in families), *(["ngram"] if name in auto.FOR_EVERY_RUN else [])]
    for model in receivers:
        spec = get_spec(model)
        assert why_not(name, model, spec.config, spec.train) is None, (name, model)


def test_a_candidate_of_another_size_trains_with_its_options(small_data, tmp_path, monkeypatch, poor_ngram):
    monkeypatch.setattr(auto, "plan", lambda figures: "lstm-small")
    result = makemore.train(data=str(small_data), model="auto", out=tmp_path / "run", max_steps=30, **QUIET)
    config = config_of(tmp_path / "run")
    assert result.choice["chosen"] == "lstm-small" and config["model"] == "lstm"
    assert config["model_config"]["n_hidden"] == 256 and config["model_config"]["n_layer"] == 1


def test_a_neural_run_whose_val_nll_stalls_ends_early_not_interrupted(small_data, tmp_path, monkeypatch, poor_ngram):
    monkeypatch.setattr(auto, "STALL_EVALUATIONS", 2)
    original = auto.Stall.stalled

    def flat(self, event):  # after the first evaluation, none better: a stalled run, whatever the weights do
        if self.plateau.best_step:
            event = dataclasses.replace(event, val_loss=math.inf)
        return original(self, event)

    monkeypatch.setattr(auto.Stall, "stalled", flat)
    result = makemore.train(data=str(small_data), model="auto", out=tmp_path / "run", max_steps=200, **QUIET)
    neural = result.choice["candidates"][result.choice["trained"]]
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])["step"] \
        if result.choice["chosen"] != "ngram" else None
    assert neural["steps"] < 200 and not neural["interrupted"] and not result.interrupted
    assert neural["stopped_early"].startswith(f"stopped early at step {neural['steps']:,}: val NLL had not improved in 2")
    if first is not None:
        assert neural["steps"] == 3 * first  # the evaluation after two that were no better
