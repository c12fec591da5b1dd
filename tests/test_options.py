"""Options are declared once (config.py): the command line, the Python API's checks, config.json
and resume's rules all follow the declarations."""

import json
from dataclasses import fields

import pytest

import makemore
from makemore.cli import build_parser
from makemore.config import MODEL_OPTIONS, RESUMABLE, TRAIN_OPTIONS, ModelConfig, OptionError, TrainConfig, flag
from makemore.errors import MakemoreError
from makemore.lrfind import SWEEP_OPTIONS
from makemore.models import REGISTRY, model_options

QUIET = {"quiet": True, "log": lambda msg: None}


def flags_of(command: str) -> set[str]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return {f for action in sub.choices[command]._actions for f in action.option_strings}


def test_every_declared_option_is_a_flag_of_train_and_lr_find_takes_only_what_it_reads():
    train, sweep = flags_of("train"), flags_of("lr-find")
    for name in [*TRAIN_OPTIONS, *MODEL_OPTIONS]:
        assert flag(name) in train, name
    for name in TRAIN_OPTIONS:
        assert (flag(name) in sweep) == (name in SWEEP_OPTIONS), name


def test_config_json_records_every_declared_option(small_data, tmp_path):
    result = makemore.train(data=str(small_data), model="mlp", out=tmp_path / "run", max_steps=2, **QUIET)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert set(config["train_config"]) == {f.name for f in fields(TrainConfig)}
    assert set(config["model_config"]) == {f.name for f in fields(ModelConfig)}


def test_registry_defaults_are_checked_configs():
    for name, spec in REGISTRY.items():
        assert isinstance(spec.config, ModelConfig) and isinstance(spec.train, TrainConfig), name
        # every option a model's registry entry sets away from the global default is one it reads
        for option in MODEL_OPTIONS:
            if getattr(spec.config, option) != getattr(ModelConfig(), option):
                assert option in model_options(name), (name, option)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_step": 5}, "unknown option 'max_step'; did you mean 'max_steps'?"),
        ({"batch_size": 2.5}, "batch_size must be a whole number (got 2.5)"),
        ({"batch_size": True}, "batch_size must be a whole number (got True)"),
        ({"lr": "0.1"}, "lr must be a number (got '0.1')"),
        ({"lr": float("inf")}, "lr must be a finite number (got inf)"),
        ({"dropout": 1.5, "model": "lstm"}, "dropout must be at most 0.99 (got 1.5)"),
        ({"optimizer": "adam"}, "optimizer must be one of: adamw, sgd (got 'adam')"),
        ({"batchnorm": 1}, "batchnorm must be True or False (got 1)"),
        ({"seed": 2**64}, "seed must be at most 18,446,744,073,709,551,615"),
        ({"split_seed": -1}, "split_seed must be at least 0 (got -1)"),
        ({"n_embd": 3, "model": "bigram"}, "model bigram does not use n_embd"),
        ({"diagnostics_interval": 5}, "diagnostics_interval sets how often diagnostics records; pass diagnostics too"),
        ({"n_embd": 8192, "n_hidden": 16384, "block_size": 1024}, "parameters, more than the 2,000,000,000"),
    ],
)
def test_the_python_api_checks_its_keywords_before_writing_anything(small_data, tmp_path, options, message):
    options = {"model": "mlp", **options}
    with pytest.raises(MakemoreError) as caught:
        makemore.train(data=str(small_data), out=tmp_path / "run", **QUIET, **options)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "run").exists()


def test_the_same_mistake_names_the_flag_on_the_command_line(small_data, tmp_path, run_cli):
    status, _, err = run_cli("train", "--data", small_data, "--out", tmp_path / "run", "--model", "lstm", "--dropout", "1.5")
    assert status == 2 and err.strip() == "makemore: error: --dropout must be at most 0.99 (got 1.5)"


def test_resume_may_change_only_what_is_declared_resumable(small_data, tmp_path):
    assert RESUMABLE == ("max_steps", "time_budget", "threads", "dtype", "compile")
    makemore.train(data=str(small_data), model="mlp", out=tmp_path / "run", max_steps=10, **QUIET)
    before = (tmp_path / "run" / "config.json").read_text()
    with pytest.raises(OptionError, match=r"only max_steps, time_budget, threads, dtype and compile may change \(drop lr\)"):
        makemore.resume(tmp_path / "run", lr=0.5, **QUIET)
    with pytest.raises(MakemoreError, match="unknown option 'max_step'; did you mean 'max_steps'"):
        makemore.resume(tmp_path / "run", max_step=20, **QUIET)
    with pytest.raises(OptionError, match="max_steps must be a whole number"):
        makemore.resume(tmp_path / "run", max_steps=20.5, **QUIET)
    assert (tmp_path / "run" / "config.json").read_text() == before
    assert makemore.resume(tmp_path / "run", max_steps=20, **QUIET).steps == 20


def test_ints_are_accepted_for_float_options_and_recorded_as_floats():
    assert TrainConfig(lr=1).lr == 1.0 and isinstance(TrainConfig(lr=1).lr, float)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda run: run.score("emma"), "texts must be a list of texts, not one text: pass ['emma']"),
        (lambda run: run.score(["emma", 3]), "texts[1] must be text (got 3)"),
        (lambda run: run.sample(2.5), "n must be a whole number (got 2.5)"),
        (lambda run: run.sample(0), "n must be at least 1 (got 0)"),
        (lambda run: run.sample(3, temperature=1e-40), "temperature must be at least 1e-06"),
        (lambda run: run.sample(3, top_p=0), "top_p must be > 0"),
        (lambda run: run.sample(3, seed="7"), "seed must be a whole number"),
        (lambda run: run.sample(3, prefix=5), "prefix must be text (got 5)"),
        (lambda run: run.sample(3, novel="yes"), "novel must be True or False"),
        (lambda run: run.sample(3, max_draws=0), "max_draws must be at least 1 (got 0)"),
    ],
)
def test_a_loaded_run_checks_its_arguments(small_data, tmp_path, call, message):
    makemore.train(data=str(small_data), model="bigram", out=tmp_path / "run", **QUIET)
    with pytest.raises(MakemoreError) as caught:
        call(makemore.load(tmp_path / "run"))
    assert message in str(caught.value)


def test_sampling_options_are_declared_once_too(small_data, tmp_path, run_cli):
    makemore.train(data=str(small_data), model="bigram", out=tmp_path / "run", **QUIET)
    status, _, err = run_cli("sample", tmp_path / "run", "--temperature", "1e-40")
    assert status == 2 and err.strip() == "makemore: error: --temperature must be at least 1e-06 (got 1e-40)"
    status, _, err = run_cli("sample", tmp_path / "run", "-n", "0")
    assert status == 2 and err.strip() == "makemore: error: -n must be at least 1 (got 0)"


def test_path_arguments_of_the_python_api_are_checked(small_data, tmp_path):
    with pytest.raises(MakemoreError, match="data must be a path"):
        makemore.train(data=5, out=tmp_path / "run", **QUIET)
    with pytest.raises(MakemoreError, match="out must be a path"):
        makemore.train(data=str(small_data), out=["runs"], **QUIET)
    with pytest.raises(MakemoreError, match="path must be a path"):
        makemore.load(123)
    with pytest.raises(MakemoreError, match="run_path must be a path"):
        makemore.resume(None, **QUIET)
    assert not (tmp_path / "run").exists()


def test_training_uses_the_threads_asked_for_and_says_so_in_the_summary(small_data, tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        result = makemore.train(data=str(small_data), model="bigram-nn", out=tmp_path / "run", max_steps=3, threads=2, **QUIET)
        assert json.loads((result.run_dir / "summary.json").read_text())["threads"] == 2
    finally:
        torch.set_num_threads(before)
