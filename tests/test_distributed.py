"""Distributed training: two processes on this CPU (gloo) train what one process trains at the same
global batch, to float tolerance; stop together on SIGTERM; and resume from their own checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

import makemore
from makemore.config import OptionError, TrainConfig
from makemore.distributed import Ranks
from makemore.trainer import check_batch

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="this PyTorch has no torch.distributed with the gloo backend")

# a tiny lstm without dropout or weight drop (each rank draws its own masks, so only a run without
# them can match one process exactly); 15 items a batch: rank 0 trains on 7 rows, rank 1 on 8, unevenly in
# characters too; the weight average on, to check it averages the unwrapped model's weights
OPTIONS = {"model": "lstm", "n_embd": 8, "n_hidden": 16, "dropout": 0.0, "weight_drop": 0.0, "ema": 0.9, "batch_size": 15,
           "lr_schedule": "constant", "eval_interval": 5, "seed": 3}



def default_signals() -> None:
    """In the child: SIGINT and SIGTERM as a terminal gives them, even if the tests run in the
    background of a script (which starts them with SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def flags(options: dict) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
                           "-m", "makemore", "train", "--quiet", "--samples", "0", *map(str, args)],
                          env=ENV, capture_output=True, text=True, timeout=180)


def one_process(data, out, steps: int):
    return makemore.train(data=str(data), out=out, max_steps=steps, quiet=True, log=lambda m: None, **OPTIONS)


def metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same_run(got, want):
    """Metrics, kept model, checkpointed weights, weight average and step losses agree to 1e-5."""
    g, w = metrics(got), metrics(want)
    assert [m["step"] for m in g] == [m["step"] for m in w]
    for a, b in zip(g, w):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    for name in ("model.safetensors", "state.safetensors"):
        a, b = load_file(got / name), load_file(want / name)
        floats = [k for k in b if b[k].is_floating_point()]
        assert {k for k in a if a[k].is_floating_point()} == set(floats)
        for k in floats:
            assert torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6), f"{name} {k} differs"
    summary = json.loads((got / "summary.json").read_text())
    assert summary["processes"] == 2
    assert summary["val"]["nll"] == pytest.approx(json.loads((want / "summary.json").read_text())["val"]["nll"], rel=1e-5)


def running(marker: str) -> list[str]:
    """Processes whose command line holds `marker` (Linux: /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in cmdline.read_bytes().decode(errors="replace"):
                found.append(cmdline.parent.name)
        except OSError:
            pass
    return found


def test_two_processes_stop_on_sigterm_resume_and_train_what_one_process_trains(small_data, tmp_path):
    """One run of two processes, stopped and resumed: `makemore train --nproc 2` trains until a
    SIGTERM to it stops both ranks; torchrun resumes the run ten steps past its last checkpoint;
    and then every checkpointed figure agrees with one process trained as far at the same global
    batch. (The learning rate is constant, so the run does not depend on --max-steps.)"""
    run = tmp_path / "two"
    proc = subprocess.Popen([sys.executable, "-m", "makemore", "train", "--nproc", "2", "--data", str(small_data),
                             "--out", str(run), "--max-steps=1000000", *flags(OPTIONS), "--quiet", "--samples", "0"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)  # however the tests were started
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and not (run / "state.safetensors").exists():
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    # every rank stopped at one step, cleanly; rank 0 alone reported, and kept the best model
    assert proc.returncode == 143, err
    assert "Traceback" not in err and err.count("interrupted at step") == 1 and out.count("run: ") == 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["interrupted"] and summary["processes"] == 2
    if Path("/proc/self/cmdline").exists():
        assert running(str(run)) == []  # no rank left behind

    checkpoint = metrics(run)[-1]["step"]
    done = torchrun("--resume", run, f"--max-steps={checkpoint + 10}")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(f"resuming {run} at step {checkpoint}") == 1 and done.stdout.count("run: ") == 1

    one = one_process(small_data, tmp_path / "one", checkpoint + 10).run_dir
    assert_same_run(run, one)
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in one.iterdir())


def test_each_rank_trains_on_its_own_rows_of_every_batch():
    for world in (2, 3, 4):
        for rows in (world, 15, 32):
            shares = [Ranks(torch.device("cpu"), r, world).share(rows) for r in range(world)]
            assert [i for s in shares for i in range(rows)[s]] == list(range(rows))
            assert all(s.stop > s.start for s in shares)


def test_a_batch_smaller_than_the_number_of_processes_is_refused_in_one_line():
    with pytest.raises(OptionError, match="batch_size 1 is fewer rows than the 2 processes"):
        check_batch(TrainConfig(batch_size=1), Ranks(torch.device("cpu"), 0, 2))
    check_batch(TrainConfig(batch_size=2), Ranks(torch.device("cpu"), 1, 2))
