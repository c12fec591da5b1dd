"""Golden runs: a short seeded run of every model gives the same metrics.jsonl and final NLLs as
recorded in tests/golden/runs.json (by tests/golden/record.py), so a change meant to reshape code
without changing behaviour is checked to do exactly that.

On the CPU the figures were recorded on (same torch kernels) they must match to the last bit; on
another CPU, vectorised kernels may round differently, so there they must agree to 1e-5."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "golden"))
from golden_settings import SETTINGS, run_model  # noqa: E402

GOLDEN = json.loads((Path(__file__).parent / "golden" / "runs.json").read_text())
SAME_KERNELS = GOLDEN["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and GOLDEN["torch"] == torch.__version__


def same(a, b):
    return a == b if SAME_KERNELS else a == pytest.approx(b, rel=1e-5, abs=1e-7)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("golden")


@pytest.mark.parametrize("name", SETTINGS)
def test_short_run_matches_the_recorded_figures(name, workdir):
    got, want = run_model(name, workdir), GOLDEN["runs"][name]
    assert got["steps"] == want["steps"]
    assert [m["step"] for m in got["metrics"]] == [m["step"] for m in want["metrics"]]
    for g, w in zip(got["metrics"], want["metrics"]):
        assert g.keys() == w.keys()
        for key in w:
            assert same(g[key], w[key]), f"{name} step {w['step']} {key}: {g[key]!r} != recorded {w[key]!r}"
    for split, nll in want["final"].items():
        assert same(got["final"][split], nll), f"{name} final {split}: {got['final'][split]!r} != recorded {nll!r}"
