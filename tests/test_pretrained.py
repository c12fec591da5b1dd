"""The model shipped in the package: makes names at once, and is what its record says it is."""

import hashlib
import json

import pytest

import makemore
from makemore.api import PRETRAINED

RECORD = json.loads((PRETRAINED / "pretrained.json").read_text())


def test_the_bundled_weights_are_the_recorded_ones_and_small():
    weights = (PRETRAINED / "model.safetensors").read_bytes()
    assert hashlib.sha256(weights).hexdigest() == RECORD["model_sha256"]
    assert len(weights) == RECORD["model_bytes"] <= 5 * 2**20


def test_the_bundled_model_scores_what_its_record_says():
    run = makemore.load_pretrained(device="cpu")
    test = run.evaluate("test")
    assert round(test.nll, 4) == pytest.approx(RECORD["final"]["test"]["nll"], abs=2e-4)
    assert {k: round(v.nll, 4) for k, v in test.by_label.items()} == pytest.approx(RECORD["final"]["test"]["by_label"], abs=2e-4)


def test_sample_with_no_run_uses_the_bundled_model_and_says_so(run_cli):
    status, out, err = run_cli("sample", "-n", "5", "--seed", "0", "--label", "F")
    assert status == 0 and len(out.splitlines()) == 5 and all(out.splitlines())
    assert "bundled model" in err and len(err.strip().splitlines()) == 1
    assert out.splitlines() == makemore.load_pretrained(device="cpu").sample(5, seed=0, label="F")
