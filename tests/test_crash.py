"""Kill -9 at random moments, during steps and during writes, then --resume: the run ends exactly
where an uninterrupted one does. Checkpoints are frequent so that many kills land in a write."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from makemore.cli import main as cli

ARGS = ["--model", "mlp", "--max-steps", "120", "--eval-interval", "4", "--batch-size", "16", "--quiet", "--samples", "0"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def makemore(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "makemore", *map(str, args)], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def records(run) -> list[str]:
    try:
        return (run / "metrics.jsonl").read_text().splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return []


def finished(run) -> dict:
    state = load_file(run / "state.safetensors")
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {"state": state, "metrics": [(m["step"], m["train_loss"], m["val_loss"], m["lr"]) for m in metrics],
            "model": load_file(run / "model.safetensors")}


def same(a: dict, b: dict) -> bool:
    return (a["metrics"] == b["metrics"] and a["state"].keys() == b["state"].keys()
            and all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])
            and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]))


def test_kill_9_at_random_moments_then_resume_reproduces_the_uninterrupted_run(shared_data, tmp_path):
    straight = tmp_path / "straight"
    assert cli(["train", "--data", str(shared_data), "--out", str(straight), *ARGS]) == 0  # in this process: as exact, faster
    expected = finished(straight)

    rng = random.Random(2026)
    run = tmp_path / "killed"
    kills = 0
    command = ["train", "--data", shared_data, "--out", run, *ARGS]
    for attempt in range(5):
        proc = makemore(*command)
        # kill once the run has gone a random number of checkpoints further (progress, not seconds:
        # a fast and a slow machine alike), then a random moment later, so some kills land in a write
        target = len(records(run)) + rng.randint(0, 8)
        deadline = time.monotonic() + 60
        while len(records(run)) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.03))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        elif proc.returncode == 0:
            break
        else:
            pytest.fail(proc.stderr.read())
        # continue from the last checkpoint; a run killed before its first one simply starts again
        command = ["train", "--resume", run, "--quiet", "--samples", "0"] if (run / "state.safetensors").exists() else command
    else:
        proc = makemore(*command)
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert kills >= 3, "the run finished before it was killed often enough to test anything"
    assert same(finished(run), expected)
    assert json.loads((run / "summary.json").read_text())["step"] == 120
