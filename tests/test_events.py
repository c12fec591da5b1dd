"""Training reports as events (training/events.py): their order and figures, `event.stop()` as
Ctrl-C, a callback that raises, a counted model's run, and torchrun's rank 0 alone hearing them."""

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

import makemore
from makemore.checkpoint import METRICS, MODEL, STATE, SUMMARY
from makemore.errors import MakemoreError
from makemore.training.state import STEP_LOSS

QUIET = {"quiet": True, "log": lambda msg: None}
MLP = {"model": "mlp", "batch_size": 16, "eval_interval": 10}


def train(data, out, on_event, **options):
    return makemore.train(data=str(data), out=out, on_event=on_event, **QUIET, **{**MLP, **options})


def records(run) -> list[dict]:
    return [json.loads(line) for line in (run / METRICS).read_text().splitlines()]


def test_a_short_run_reports_started_steps_evaluations_checkpoints_and_finished(small_data, tmp_path):
    heard = []
    result = train(small_data, tmp_path / "run", heard.append, max_steps=20)
    every_ten = ["step"] * 10 + ["evaluating", "evaluating", "evaluated", "checkpointed"]
    assert [e.kind for e in heard] == ["started", *every_ten, *every_ten, "evaluating", "finished"]  # test alone: see below
    steps = [e for e in heard if e.kind == "step"]
    assert [e.step for e in steps] == list(range(1, 21))
    assert [e.loss for e in steps] == pytest.approx(load_file(result.run_dir / STATE)[STEP_LOSS].tolist(), abs=0)
    evaluated = [e for e in heard if e.kind == "evaluated"]
    assert [e.record() for e in evaluated] == records(result.run_dir)  # the figures metrics.jsonl holds, exactly
    assert [e.lr for e in evaluated] == [steps[9].lr, steps[19].lr]
    assert [e.path for e in heard if e.kind == "checkpointed"] == [result.run_dir / STATE] * 2
    started, finished = heard[0], heard[-1]
    assert (started.step, started.max_steps, started.resumed) == (0, 20, False)
    assert finished.step == 20 and not finished.interrupted and not finished.diverged
    assert finished.final["val"].nll == result.final["val"].nll


def test_stop_ends_the_run_after_that_step_and_resume_continues_as_a_straight_run(small_data, tmp_path):
    def stop_at_25(event):
        if event.kind == "step" and event.step == 25:
            event.stop()

    heard = []
    stopped = train(small_data, tmp_path / "stopped", lambda e: heard.append(e) or stop_at_25(e), max_steps=40)
    assert stopped.steps == 25 and stopped.interrupted
    assert heard[-1].kind == "finished" and heard[-1].interrupted and [e.kind for e in heard[-3:-1]] == ["step", "evaluating"]
    summary = json.loads((stopped.run_dir / SUMMARY).read_text())
    assert summary["interrupted"] and summary["step"] == 25
    # as after Ctrl-C: the kept model is the best evaluated one; the checkpoint (step 20) is there to resume
    assert makemore.load(stopped.run_dir).evaluate("val").nll == pytest.approx(stopped.final["val"].nll, abs=1e-12)

    resumed = makemore.resume(stopped.run_dir, **QUIET)
    straight = train(small_data, tmp_path / "straight", None, max_steps=40)
    assert resumed.steps == 40 and not resumed.interrupted
    assert records(resumed.run_dir) == [{**r, **{k: records(resumed.run_dir)[i][k] for k in ("elapsed", "train_seconds", "chars_per_sec")}}
                                        for i, r in enumerate(records(straight.run_dir))]
    s, r = load_file(straight.run_dir / MODEL), load_file(resumed.run_dir / MODEL)
    assert all(torch.equal(s[k], r[k]) for k in s)


def test_a_callback_that_raises_ends_the_run_cleanly_then_raises_again(small_data, tmp_path):
    """The run ends as on Ctrl-C (best model kept, summary.json says interrupted, --resume goes
    on), then the callback's exception comes out of train() as it was."""
    heard = []

    def fails_at_15(event):
        heard.append(event.kind)
        if event.kind == "step" and event.step == 15:
            raise ValueError("the caller's bug")

    with pytest.raises(ValueError, match="the caller's bug"):
        train(small_data, tmp_path / "run", fails_at_15, max_steps=40)
    assert heard[-1] == "step" and heard.count("step") == 15  # not called again once it has failed
    summary = json.loads((tmp_path / "run" / SUMMARY).read_text())
    assert summary["interrupted"] and summary["step"] == 15
    assert makemore.resume(tmp_path / "run", **QUIET).steps == 40


def test_resume_reports_where_it_starts(small_data, tmp_path):
    train(small_data, tmp_path / "run", None, max_steps=10)
    heard = []
    makemore.resume(tmp_path / "run", max_steps=20, on_event=heard.append, **QUIET)
    assert (heard[0].kind, heard[0].step, heard[0].resumed) == ("started", 10, True)
    assert heard[0].best_val == records(tmp_path / "run")[0]["val_loss"]
    assert [e.step for e in heard if e.kind == "step"] == list(range(11, 21))


def test_a_counted_model_reports_one_evaluation_and_no_steps(small_data, tmp_path):
    heard = []
    result = makemore.train(data=str(small_data), model="bigram", out=tmp_path / "run", on_event=heard.append, **QUIET)
    kinds = [e.kind for e in heard]
    assert kinds == ["started", "fitted", "evaluating", "evaluating", "evaluated", "evaluating", "finished"]
    assert heard[1].step == 0 and heard[1].choice is None  # the bigram's fit chooses nothing on val
    assert heard[4].record() == records(result.run_dir)[0] and heard[4].step == 0
    assert heard[-1].final["test"].nll == result.final["test"].nll


def test_on_event_must_be_a_function(small_data, tmp_path):
    with pytest.raises(MakemoreError, match="on_event must be a function of one event"):
        train(small_data, tmp_path / "run", "print", max_steps=10)
    assert not (tmp_path / "run").exists()


SCRIPT = textwrap.dedent("""
    import json, os, sys
    import makemore
    rank = os.environ["RANK"]
    heard = []
    def hear(event):
        heard.append(event.kind)
        if event.kind == "step" and event.step == 7:
            event.stop()
    result = makemore.train(sys.argv[1], model="mlp", out=sys.argv[2], quiet=True, log=lambda m: None, on_event=hear,
                            max_steps=30, eval_interval=5, batch_size=16)
    with open(os.path.join(sys.argv[3], f"rank{rank}.json"), "w") as f:
        json.dump({"heard": heard, "steps": result.steps, "interrupted": result.interrupted}, f)
""")


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="no torch.distributed with gloo")
def test_under_torchrun_rank_0_alone_hears_the_events_and_its_stop_stops_every_rank(small_data, tmp_path):
    script = tmp_path / "hear.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
                           str(script), str(small_data), str(tmp_path / "run"), str(tmp_path)],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    zero, one = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert zero["heard"][0] == "started" and zero["heard"][-1] == "finished" and zero["heard"].count("step") == 7
    assert one["heard"] == []
    assert zero["steps"] == one["steps"] == 7 and zero["interrupted"] and one["interrupted"]


def bar_after(events) -> "ProgressBar":
    from makemore.training.report import ProgressBar

    bar = ProgressBar()
    for event in events:
        bar(event)
    return bar


def test_the_bar_follows_the_limit_that_binds():
    """--max-steps alone: steps. With --time-budget: seconds of it, or the share of steps done
    when max_steps comes first (a 90-s run once ended its bar at 2400/16000)."""
    from makemore.training import events as ev

    loss = torch.tensor(2.0)
    steps = bar_after([ev.Started(0, 200, False, math.inf), ev.Step(1, 0.1, loss, 0.0, 0.5)])
    assert (steps.bar.total, steps.bar.n, steps.bar.unit) == (200, 1, "step")
    timed = bar_after([ev.Started(0, 16000, False, math.inf, time_budget=90.0), ev.Step(2400, 0.1, loss, 0.0, 45.0)])
    assert (timed.bar.total, timed.bar.n, timed.bar.unit) == (90.0, 45.0, "s")  # time binds: half the budget spent
    fast = bar_after([ev.Started(0, 1000, False, math.inf, time_budget=90.0), ev.Step(750, 0.1, loss, 0.0, 30.0)])
    assert fast.bar.n == 67.5  # steps bind: three quarters of them done in a third of the budget
    resumed = bar_after([ev.Started(100, 1000, True, 2.0, time_budget=90.0, elapsed=40.0), ev.Step(101, 0.1, loss, 0.0, 40.1)])
    assert resumed.bar.n == pytest.approx(40.1)
    for bar in (steps, timed, fast, resumed):
        bar.close()


def test_a_val_figure_over_a_sample_says_so_on_the_bar():
    from makemore.training import events as ev

    loss, sample = torch.tensor(2.0), {"items": 2235, "chars": 22489, "of_items": 300000, "of_chars": 2996750, "seed": 0}
    evaluated = ev.Evaluated(50, 2.1, 2.2, 0.1, 1.0, 1.0, 1.0, torch.empty(0), {"val": sample})
    bar = bar_after([ev.Started(0, 200, False, math.inf), ev.Step(50, 0.1, loss, 0.0, 0.5), evaluated,
                     ev.Step(100, 0.1, loss, 0.0, 1.0)])
    assert bar.figures["best_val"] == "2.2000 (a sample of 22,489 chars)"
    assert evaluated.record()["sampled"] == {"val": sample}
    whole = bar_after([ev.Started(0, 200, False, math.inf), ev.Step(50, 0.1, loss, 0.0, 0.5),
                       ev.Evaluated(50, 2.1, 2.2, 0.1, 1.0, 1.0, 1.0, torch.empty(0)), ev.Step(100, 0.1, loss, 0.0, 1.0)])
    assert whole.figures["best_val"] == "2.2000"
    bar.close()
    whole.close()


def test_evaluations_say_so_on_the_bar_and_in_the_events(small_data, tmp_path, capfd):
    heard = []
    makemore.train(data=str(small_data), out=tmp_path / "run", on_event=heard.append, log=lambda m: None, quiet=False,
                   **{**MLP, "max_steps": 10})
    evaluating = [(e.split, e.final) for e in heard if e.kind == "evaluating"]
    assert evaluating == [("train", False), ("val", False), ("test", True)]
    assert heard[11].kind == "evaluating" and heard[13].kind == "evaluated"  # before the evaluation it announces
    shown = capfd.readouterr().err.replace("\r", "\n")
    assert "evaluating: val split…" in shown and "final evaluation: test split…" in shown
    assert shown.rstrip().splitlines()[-1].startswith("100%") and "best_val=" in shown.rstrip().splitlines()[-1]


def test_under_a_time_budget_evaluations_follow_the_clock(small_data, tmp_path):
    """With --time-budget and no --eval-interval, about every 5% of the budget (not every
    max_steps/20 steps, which a short budget may never reach), so the best model is kept at any budget."""
    result = train(small_data, tmp_path / "run", None, max_steps=10**6, time_budget=3.0, eval_interval=None)
    rows = records(result.run_dir)
    assert result.steps < 10**6 // 20 and len(rows) >= 3, rows  # step-based, none would have come before the end
    gaps = [b["elapsed"] - a["elapsed"] for a, b in zip(rows, rows[1:-1])]
    assert all(gap >= 0.05 * 3.0 for gap in gaps), gaps  # a twentieth of the budget apart, at least
    stepped = train(small_data, tmp_path / "stepped", None, max_steps=10**6, time_budget=1.0, eval_interval=50)
    assert all(r["step"] % 50 == 0 for r in records(stepped.run_dir)[:-1])  # an interval given is kept


def test_the_schedule_spreads_evaluations_and_bounds_their_share():
    from makemore.config import TrainConfig
    from makemore.training.schedule import EvalSchedule

    class One:
        distributed, main = False, True

    timed = EvalSchedule(TrainConfig(max_steps=1000, time_budget=100.0))
    assert not timed.due(1, 4.9, One) and timed.due(2, 5.0, One)
    timed.evaluated(5.5, 0.5)  # a short evaluation: the next one a twentieth of the budget later
    assert not timed.due(3, 10.4, One) and timed.due(4, 10.5, One)
    timed.evaluated(12.0, 2.0)  # a long one: training gets four times its length first
    assert not timed.due(5, 19.9, One) and timed.due(6, 20.0, One)
    timed.evaluated(21.0, 0.1)  # a cheap one: the next when evaluating has cost a twentieth of the time
    assert not timed.due(7, 22.8, One) and timed.due(8, 22.9, One)
    timed.evaluated(23.0, 0.001)  # however cheap, a second apart at the most often
    assert not timed.due(9, 23.9, One) and timed.due(10, 24.0, One)
    stepped = EvalSchedule(TrainConfig(max_steps=1000))
    assert [s for s in range(1, 201) if stepped.due(s, 0.0, One)] == [50, 100, 150, 200]


def test_a_run_whose_val_nll_stops_improving_says_so_once(small_data, tmp_path):
    said = []
    makemore.train(data=str(small_data), out=tmp_path / "run", quiet=True, log=said.append, model="mlp", batch_size=16,
                   eval_interval=20, max_steps=800, lr=0.3, n_embd=24, n_hidden=400)
    stalled = [line for line in said if line.startswith("val NLL has not improved")]
    assert len(stalled) == 1 and "the model kept" in stalled[0], said


@pytest.mark.parametrize("model, options", [("mlp", {"max_steps": 30, "eval_interval": 10}), ("bigram", {})])
def test_the_final_figures_are_the_kept_model_s_own_and_only_test_is_evaluated_again(small_data, tmp_path, model, options):
    """The kept model's train and val NLL come from the evaluation that kept it (the same weights,
    the same code): bit for bit what evaluating it again gives, and the final evaluation costs one
    split, not three. Its time is said beside the training time."""
    heard = []
    result = makemore.train(data=str(small_data), model=model, out=tmp_path / "run", on_event=heard.append,
                            **QUIET, **({"batch_size": 16} if model == "mlp" else {}), **options)
    finals = [e.split for e in heard if e.kind == "evaluating" and e.final]
    assert finals == ["test"]
    run = makemore.load(result.run_dir, device="cpu")
    for split in ("train", "val", "test"):
        again = run.evaluate(split)
        assert (result.final[split].nll, result.final[split].chars, result.final[split].items) == (again.nll, again.chars, again.items)
    summary = json.loads((result.run_dir / SUMMARY).read_text())
    assert summary["val"]["nll"] == min(r["val_loss"] for r in records(result.run_dir))
    assert summary["final_evaluation_seconds"] >= 0 and heard[-1].final_seconds == result.final_seconds
