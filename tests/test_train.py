"""Training runs: determinism, the run directory, resume, Ctrl-C."""

import json
import math
import time

import pytest
import torch
from safetensors.torch import load_file

import makemore
from makemore.checkpoint import CONFIG, METRICS, MODEL, STATE, SUMMARY
from makemore.errors import MakemoreError
from makemore.data import WindowBatches
from makemore.training.loop import Training
from makemore.training.update import WeightAverage

QUIET = {"quiet": True, "log": lambda msg: None}


def train_small(data, out, **options):
    options = {"model": "mlp", "max_steps": 40, "eval_interval": 20, "batch_size": 16, **options}
    return makemore.train(data=str(data), out=out, **QUIET, **options)


def test_run_directory_describes_itself(small_data, tmp_path):
    result = train_small(small_data, tmp_path / "run")
    run = result.run_dir
    cfg = json.loads((run / CONFIG).read_text())
    assert cfg["model"] == "mlp" and cfg["model_config"]["block_size"] == 3
    assert cfg["train_config"]["max_steps"] == 40 and cfg["train_config"]["batch_size"] == 16
    assert cfg["data"]["items"] == 300 and cfg["data"]["split"]["train"]["items"] == 240
    assert len(cfg["data"]["fingerprint"]) == 64 and cfg["vocab"][0] == "a"
    metrics = [json.loads(line) for line in (run / METRICS).read_text().splitlines()]
    assert [m["step"] for m in metrics] == [20, 40]
    assert {"step", "train_loss", "val_loss", "lr", "chars_per_sec", "elapsed"} <= metrics[0].keys()
    summary = json.loads((run / SUMMARY).read_text())
    best = min(m["val_loss"] for m in metrics)
    assert summary["val"]["nll"] == pytest.approx(best, abs=1e-9)  # the kept model is the best by val
    assert not list(run.glob("*.tmp"))


def test_same_seed_gives_identical_losses_and_model(small_data, tmp_path):
    a = train_small(small_data, tmp_path / "a", seed=3)
    b = train_small(small_data, tmp_path / "b", seed=3)
    c = train_small(small_data, tmp_path / "c", seed=4)
    losses = lambda r: [(m["train_loss"], m["val_loss"]) for m in map(json.loads, (r.run_dir / METRICS).read_text().splitlines())]  # noqa: E731
    assert losses(a) == losses(b) != losses(c)
    wa, wb = load_file(a.run_dir / MODEL), load_file(b.run_dir / MODEL)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_save_then_load_gives_identical_logits_and_losses(small_data, tmp_path):
    result = train_small(small_data, tmp_path / "run")
    run = makemore.load(result.run_dir)
    again = makemore.load(result.run_dir)
    x = torch.randint(0, len(run.vocab), (4, 9))
    x[:, 0] = 0
    assert torch.equal(run.model(x), again.model(x))
    for split in ("train", "val", "test"):
        assert run.evaluate(split).nll == pytest.approx(result.final[split].nll, abs=1e-12)


@pytest.mark.parametrize("ema", [0.0, 0.9], ids=["last-weights", "weight-average"])
def test_resume_continues_exactly_where_the_checkpoint_left_off(small_data, tmp_path, ema):
    # mlp has BatchNorm: the average covers its running statistics and its integer step counter
    straight = train_small(small_data, tmp_path / "straight", max_steps=60, lr_schedule="constant", ema=ema)
    train_small(small_data, tmp_path / "resumed", max_steps=20, lr_schedule="constant", ema=ema)
    resumed = makemore.resume(tmp_path / "resumed", max_steps=60, **QUIET)
    assert resumed.steps == 60
    s, r = load_file(straight.run_dir / STATE), load_file(resumed.run_dir / STATE)
    assert s.keys() == r.keys() and all(torch.equal(s[k], r[k]) for k in s)
    metrics = lambda run: [json.loads(line)["val_loss"] for line in (run / METRICS).read_text().splitlines()]  # noqa: E731
    assert metrics(straight.run_dir) == metrics(resumed.run_dir)


def test_train_seconds_leave_evaluation_out_across_a_resume(small_data, tmp_path, monkeypatch):
    """metrics.jsonl's train_seconds is elapsed less the time spent evaluating, kept across --resume."""
    original = Training.evaluate

    def slow_evaluate(self):
        time.sleep(0.25)
        return original(self)

    monkeypatch.setattr(Training, "evaluate", slow_evaluate)
    train_small(small_data, tmp_path / "run", max_steps=30, eval_interval=10)
    makemore.resume(tmp_path / "run", max_steps=50, **QUIET)
    metrics = [json.loads(line) for line in (tmp_path / "run" / METRICS).read_text().splitlines()]
    assert [m["step"] for m in metrics] == [10, 20, 30, 40, 50]
    # evaluations counted in each record: those before it; the checkpoint a resume starts from was
    # saved during its evaluation, so neither its elapsed nor its eval_seconds hold that one
    for evaluations, m in zip([0, 1, 2, 2, 3], metrics):
        assert 0.25 * evaluations <= m["elapsed"] - m["train_seconds"] < 0.45 * evaluations + 0.1  # checkpointing a tiny mlp is quick
        assert m["train_seconds"] > 0
    assert all(a["train_seconds"] < b["train_seconds"] for a, b in zip(metrics, metrics[1:]))


def test_ctrl_c_stops_cleanly_and_keeps_the_best_model(small_data, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = WindowBatches.__call__  # train_small trains an mlp

    def interrupt_at_step_30(self):
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(WindowBatches, "__call__", interrupt_at_step_30)
    result = train_small(small_data, tmp_path / "run", max_steps=100, eval_interval=10)
    assert result.interrupted and result.steps == 29
    run = makemore.load(result.run_dir)
    assert run.evaluate("val").nll == pytest.approx(result.final["val"].nll, abs=1e-12)
    monkeypatch.setattr(WindowBatches, "__call__", original)
    resumed = makemore.resume(result.run_dir, **QUIET)
    assert resumed.steps == 100 and not resumed.interrupted


def test_weight_average_is_what_gets_evaluated_and_kept(small_data, tmp_path, monkeypatch):
    """With --ema the model evaluated and saved is the moving average, not the last weights."""
    seen = {}
    original = Training.evaluate

    def spy(self):
        seen["last"] = {k: v.clone() for k, v in self.model.state_dict().items()}
        seen["average"] = {k: v.clone() for k, v in self.average.model.state_dict().items()}
        return original(self)

    monkeypatch.setattr(Training, "evaluate", spy)
    result = train_small(small_data, tmp_path / "run", max_steps=20, eval_interval=20, ema=0.5)
    kept = load_file(result.run_dir / MODEL)
    assert kept.keys() == seen["average"].keys()
    assert all(torch.equal(kept[k], seen["average"][k]) for k in kept)
    assert not all(torch.equal(kept[k], seen["last"][k]) for k in kept)
    assert makemore.load(result.run_dir).evaluate("val").nll == pytest.approx(result.final["val"].nll, abs=1e-12)


def test_weight_average_follows_its_decay_schedule():
    model = torch.nn.Linear(1, 1, bias=False)
    average = WeightAverage(model, decay=0.9)
    expected = None
    for n, value in enumerate([1.0, 2.0, 4.0, 8.0, 16.0, 32.0] * 5):
        model.weight.data.fill_(value)
        average.update(model)
        decay = min(0.9, (1 + n) / (10 + n))  # n: updates before this one
        expected = value if expected is None else decay * expected + (1 - decay) * value
        assert average.model.weight.item() == pytest.approx(expected, rel=1e-6)


def test_time_budget_stops_training(small_data, tmp_path):
    result = train_small(small_data, tmp_path / "run", max_steps=10**9, time_budget=0.3)
    assert 0 < result.steps < 10**9 and result.seconds < 30


def test_step_schedule_divides_the_rate_by_ten_half_way(small_data, tmp_path):
    result = train_small(small_data, tmp_path / "run", optimizer="sgd", lr=0.1, lr_schedule="step", max_steps=40, eval_interval=10)
    lrs = [json.loads(line)["lr"] for line in (result.run_dir / METRICS).read_text().splitlines()]
    assert lrs == [0.1, 0.1, pytest.approx(0.01), pytest.approx(0.01)]


def test_existing_run_directory_is_not_overwritten_without_force(small_data, tmp_path):
    train_small(small_data, tmp_path / "run")
    with pytest.raises(MakemoreError, match="--resume"):
        train_small(small_data, tmp_path / "run")
    assert train_small(small_data, tmp_path / "run", force=True).steps == 40


@pytest.mark.parametrize("model", ["bigram", "bigram-nn", "mlp"])
def test_every_core_model_trains_samples_and_scores(small_data, tmp_path, model):
    if model == "bigram":  # fitted by counting: it takes no training steps or batches
        result = makemore.train(data=str(small_data), out=tmp_path / model, model=model, **QUIET)
    else:
        result = train_small(small_data, tmp_path / model, model=model, batch_size=8, max_steps=20, eval_interval=10)
    run = makemore.load(result.run_dir)
    items = run.sample(20, seed=1)
    assert len(items) == 20 and items == run.sample(20, seed=1)
    assert all(len(item) <= run.model_config.max_len for item in items)
    scores = run.score(["emma", "ava"])
    assert [s.chars for s in scores] == [5, 4]
    assert all(s.nll_per_char == pytest.approx(s.nll / s.chars) for s in scores)


def test_force_never_deletes_a_folder_that_is_not_a_run(small_data, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    with pytest.raises(MakemoreError, match="not a makemore run"):
        train_small(small_data, folder, force=True)
    assert (folder / "thesis.tex").read_text() == "precious"


def test_force_replaces_only_what_a_run_wrote(small_data, tmp_path):
    train_small(small_data, tmp_path / "run")
    (tmp_path / "run" / "notes.txt").write_text("mine")
    data_inside = tmp_path / "run" / "small.txt"
    data_inside.write_bytes(small_data.read_bytes())
    result = train_small(data_inside, tmp_path / "run", force=True, max_steps=20)
    assert result.steps == 20 and (tmp_path / "run" / "notes.txt").read_text() == "mine" and data_inside.exists()
    assert [json.loads(line)["step"] for line in (tmp_path / "run" / METRICS).read_text().splitlines()] == [20]


def test_force_through_a_symlinked_run_directory(small_data, tmp_path):
    train_small(small_data, tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    assert train_small(small_data, tmp_path / "link", force=True, max_steps=20).steps == 20
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real" / MODEL).exists()


def test_a_run_killed_before_its_first_checkpoint_can_simply_be_started_again(small_data, tmp_path):
    train_small(small_data, tmp_path / "run")
    for path in (tmp_path / "run").iterdir():
        if path.name != CONFIG:
            path.unlink()
    assert train_small(small_data, tmp_path / "run").steps == 40  # no --force needed


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_readable_recurrent_cells_train_and_diagnostics_see_their_nonlinearities(small_data, tmp_path, name):
    result = train_small(small_data, tmp_path / name, model=name, fused=False, diagnostics=True, diagnostics_interval=10,
                         n_embd=8, n_hidden=16, n_layer=2, max_steps=20, eval_interval=10)
    config = json.loads((result.run_dir / CONFIG).read_text())
    assert config["model_config"]["fused"] is False
    assert makemore.load(result.run_dir).model.fused is False
    records = [json.loads(line) for line in (result.run_dir / "diagnostics.jsonl").read_text().splitlines()]
    seen = {layer["name"] for layer in records[0]["layers"]}
    expected = {"rnn": {"cells.0 tanh", "cells.1 tanh"},
                "lstm": {"cells.0 tanh", "cells.0 sigmoid", "cells.1 tanh", "cells.1 sigmoid"},
                "gru": {"cells.0 tanh", "cells.0 sigmoid", "cells.1 tanh", "cells.1 sigmoid"}}[name]
    assert seen == expected


def test_divergence_stops_training_keeps_the_best_finite_model_and_says_what_to_try(small_data, tmp_path, monkeypatch):
    """A loss that turns NaN at step 25 is caught at the next look (step 30): the model kept is
    the best from before it, the checkpoint stays the finite one of step 20, and the error says
    what to try."""
    from makemore.errors import Diverged
    from makemore.models.mlp import MLP

    calls = {"n": 0}
    original = MLP.loss

    def nan_from_step_25(self, batch):
        calls["n"] += 1
        loss = original(self, batch)
        return loss * float("nan") if calls["n"] > 25 else loss

    monkeypatch.setattr(MLP, "loss", nan_from_step_25)
    with pytest.raises(Diverged, match=r"diverged at step 30 .* is kept in .*; try a lower --lr than 0.1") as caught:
        train_small(small_data, tmp_path / "run", max_steps=100, eval_interval=10, optimizer="sgd", lr=0.1)
    assert caught.value.exit_code == 3
    metrics = [json.loads(line) for line in (tmp_path / "run" / METRICS).read_text().splitlines()]
    assert [m["step"] for m in metrics] == [10, 20]
    summary = json.loads((tmp_path / "run" / SUMMARY).read_text())
    assert summary["diverged"] and summary["val"]["nll"] == pytest.approx(min(m["val_loss"] for m in metrics), abs=1e-9)
    state = load_file(tmp_path / "run" / STATE)
    assert len(state["train.step_loss"]) == 20 and torch.isfinite(state["train.step_loss"]).all()
    monkeypatch.setattr(MLP, "loss", original)
    assert makemore.resume(tmp_path / "run", **QUIET).steps == 100  # the finite checkpoint goes on


def test_a_model_that_diverged_at_once_keeps_nothing_and_says_so(small_data, tmp_path, run_cli):
    status, out, err = run_cli("train", "--data", small_data, "--out", tmp_path / "run", "--model", "bigram-nn",
                               "--lr", "1e30", "--max-steps", "20", "--eval-interval", "10", "--quiet")
    assert status == 3 and len(err.strip().splitlines()) == 1 and "before any model was worth keeping" in err
    assert not (tmp_path / "run").exists()  # the folder it made goes with the run: nothing looks like a run without a model


def test_damaged_weights_give_a_clear_error_when_sampling_and_inf_perplexity_when_scoring(small_data, tmp_path, run_cli):
    from safetensors.torch import save_file

    train_small(small_data, tmp_path / "run", max_steps=10)
    weights = load_file(tmp_path / "run" / MODEL)
    save_file({k: v * float("inf") if v.is_floating_point() else v for k, v in weights.items()}, tmp_path / "run" / MODEL)
    status, out, err = run_cli("sample", tmp_path / "run", "-n", "3")
    assert status == 2 and len(err.strip().splitlines()) == 1 and "not finite" in err and "Traceback" not in err
    status, out, err = run_cli("score", tmp_path / "run", "emma", "--json")
    assert status == 0, err
    status, out, err = run_cli("eval", tmp_path / "run", "--json")
    assert status == 0, err


def test_a_bigram_without_smoothing_has_infinite_val_nll_and_that_is_a_result():
    from makemore.evaluate import EvalResult

    r = EvalResult.from_total("val", 1e6, 10, 2)
    assert r.nll == 1e5 and r.perplexity == float("inf")
    assert math.isnan(EvalResult.from_total("val", float("nan"), 10, 2).perplexity)


def test_dropout_from_trains_its_first_steps_exactly_as_without_dropout_and_resumes_across_the_switch(small_data, tmp_path):
    options = {"model": "lstm", "n_embd": 8, "n_hidden": 16, "n_layer": 2, "max_steps": 40, "eval_interval": 10, "ema": 0.0,
               "lr_schedule": "constant"}  # constant: the resumed run first trains to 10 steps of 40
    dropping = {"dropout": 0.3, "weight_drop": 0.3}
    val = lambda r: [json.loads(line)["val_loss"] for line in (r.run_dir / METRICS).read_text().splitlines()]  # noqa: E731
    never = val(train_small(small_data, tmp_path / "never", dropout=0.0, weight_drop=0.0, **options))
    late = train_small(small_data, tmp_path / "late", dropout_from=20, **dropping, **options)
    always = val(train_small(small_data, tmp_path / "always", **dropping, **options))
    assert val(late)[:2] == never[:2]  # steps 0-19 trained as if the model had no dropout
    assert val(late)[2] != never[2] and val(late)[2] != always[2]  # then with it, from other weights
    train_small(small_data, tmp_path / "resumed", dropout_from=20, **dropping, **{**options, "max_steps": 10})
    resumed = makemore.resume(tmp_path / "resumed", max_steps=40, **QUIET)
    s, r = load_file(late.run_dir / STATE), load_file(resumed.run_dir / STATE)
    assert all(torch.equal(s[k], r[k]) for k in s) and val(resumed) == val(late)


# ---- past evaluate.SAMPLE_CHARS: checkpoints measure a seeded sample, the final val and test are whole ----


def metrics_of(run) -> list[dict]:
    return [json.loads(line) for line in (run / METRICS).read_text().splitlines()]


def test_a_split_past_sample_chars_is_evaluated_on_a_fixed_seeded_sample(small_data, tmp_path, monkeypatch):
    monkeypatch.setattr("makemore.evaluate.SAMPLE_CHARS", 150)  # the small list's 240 training items are ~1,700 chars
    result = train_small(small_data, tmp_path / "run")
    run = makemore.load(result.run_dir)
    metrics = metrics_of(result.run_dir)
    train, val = metrics[0]["sampled"]["train"], metrics[0]["sampled"]["val"]
    assert all(m["sampled"] == metrics[0]["sampled"] for m in metrics)  # the same items at every checkpoint
    assert train["of_items"] == 240 and 150 <= train["chars"] < 150 + 12 and train["items"] < 240
    summary = json.loads((result.run_dir / SUMMARY).read_text())
    kept = next(m for m in metrics if m["val_loss"] == min(m["val_loss"] for m in metrics))
    # the train figure is the kept checkpoint's, over its recorded sample; val and test are every item's
    assert summary["train"]["nll"] == kept["train_loss"] and summary["train"]["sample"] == train
    assert summary["train"]["chars"] == train["chars"] and summary["val"]["chars"] == val["of_chars"]
    assert "sample" not in summary["val"] and "sample" not in summary["test"]
    for split in ("val", "test"):
        assert summary[split]["nll"] == pytest.approx(run.evaluate(split).nll, abs=1e-12)
    again = train_small(small_data, tmp_path / "again", seed=5)
    assert metrics_of(again.run_dir)[0]["sampled"] == metrics[0]["sampled"]  # the split's sample, whatever the run


def test_below_sample_chars_nothing_is_sampled(small_data, tmp_path):
    result = train_small(small_data, tmp_path / "run")
    assert all("sampled" not in m for m in metrics_of(result.run_dir))
    summary = json.loads((result.run_dir / SUMMARY).read_text())
    assert all("sample" not in summary[s] for s in ("train", "val", "test"))


def test_a_stop_during_an_evaluation_ends_it_and_keeps_the_best_model(small_data, tmp_path, monkeypatch):
    """event.stop() (the page's Stop) while a checkpoint evaluates stops it within a chunk, not after it;
    an interrupted run's final figures are over the samples, so that it stops at once."""
    monkeypatch.setattr("makemore.evaluate.SAMPLE_CHARS", 150)
    heard = []

    def on_event(event):
        heard.append((event.kind, event.step))
        if event.kind == "evaluating" and event.step == 40 and not event.final:
            event.stop()

    result = train_small(small_data, tmp_path / "run", max_steps=60, on_event=on_event)
    assert result.interrupted and result.steps == 40
    assert ("evaluated", 20) in heard and ("evaluated", 40) not in heard  # the evaluation at step 40 was cut short
    assert [m["step"] for m in metrics_of(result.run_dir)] == [20]
    summary = json.loads((result.run_dir / SUMMARY).read_text())
    assert summary["interrupted"] and all("sample" in summary[s] for s in ("train", "val", "test"))
    assert summary["val"]["nll"] == metrics_of(result.run_dir)[0]["val_loss"]  # the kept model's, on the same sample


def test_a_time_budget_holds_its_last_evaluation(small_data, tmp_path, monkeypatch):
    """Training stops early enough for the checkpoint after its last step to end within the budget:
    with every evaluation taking 1 s, a budget of 3 s once ran past 4 s (the last one after it)."""
    import makemore.training.recorder as recorder

    original = recorder.evaluate

    def slow(*args, **kwargs):
        time.sleep(0.5)  # one per split: train and val, 1 s a checkpoint
        return original(*args, **kwargs)

    monkeypatch.setattr(recorder, "evaluate", slow)
    result = makemore.train(data=str(small_data), out=tmp_path / "run", model="mlp", time_budget=3, batch_size=16, **QUIET)
    summary = json.loads((result.run_dir / SUMMARY).read_text())
    assert result.steps > 0 and summary["seconds"] < 3.5


def test_under_a_time_budget_the_samples_are_sized_to_it(small_data, tmp_path, monkeypatch):
    """The sample of a split past SAMPLE_CHARS shrinks to what one checkpoint can evaluate in its share
    of the budget (never below MIN_SAMPLE_CHARS); the final train figure is over that same sample."""
    monkeypatch.setattr("makemore.evaluate.SAMPLE_CHARS", 1_000)
    monkeypatch.setattr("makemore.training.samples.MIN_SAMPLE_CHARS", 100)
    monkeypatch.setattr("makemore.training.samples.EVAL_SHARE_EACH", 1e-9)  # any machine: the floor
    result = makemore.train(data=str(small_data), out=tmp_path / "run", model="mlp", time_budget=1, batch_size=16, **QUIET)
    metrics = metrics_of(result.run_dir)
    sample = metrics[0]["sampled"]["train"]
    assert "val" not in metrics[0]["sampled"]  # 30 items: below SAMPLE_CHARS, whole
    assert 100 <= sample["chars"] < 100 + 12 and sample["of_chars"] > 1_000
    summary = json.loads((result.run_dir / SUMMARY).read_text())
    assert summary["train"]["sample"] == sample and summary["train"]["chars"] == sample["chars"]
