"""Golden runs: a short seeded run of every model (tests/golden/golden_settings.py), checked two ways,
each demanding the same on every machine.

- Determinism: the run done twice in one session gives bit-identical metrics.jsonl figures, final
  NLLs and model.safetensors tensors. Nothing recorded is involved; it catches a run that depends on
  what ran before it (an unseeded draw, random state kept between runs, a cache).
- Drift: the run agrees with the figures in tests/golden/runs.json (tests/golden/record.py) in its
  steps and fields exactly, and in every loss, NLL and learning rate to a relative 1e-6 (REL).
  Kernels that round differently (another vendor's CPU, another SIMD width, two threads instead of
  one) moved these figures by at most 6e-8 relative in our trials; a changed computation moves them
  by more: LayerNorm's eps at 1.01e-5 instead of 1e-5 moves the transformer's by 2.5e-6. A change
  that moves the figures less than kernel rounding does (the mlp's BatchNorm eps, even ten times
  larger: 5e-7) is out of this test's sight.

runs.json also names the machine and torch build the figures came from: quoted when the drift test
fails, never a switch that changes what it demands."""

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent / "golden"))
from golden_settings import SETTINGS, machine, run_model  # noqa: E402

GOLDEN = json.loads((Path(__file__).parent / "golden" / "runs.json").read_text())
REL = 1e-6  # 17x the most kernel rounding moved a figure (5.8e-8); LayerNorm eps 1% larger: 2.5e-6


@pytest.fixture(scope="module")
def first_runs(tmp_path_factory):
    """Each model's first run in this session, shared by both checks so that each model trains twice, not thrice."""
    folder, runs = tmp_path_factory.mktemp("golden-first"), {}

    def first(name):
        if name not in runs:
            runs[name] = run_model(name, folder)
        return runs[name], folder / name

    return first


def relative(a: float, b: float) -> float:
    return 0.0 if a == b else abs(a - b) / max(abs(a), abs(b))


def where_from() -> str:
    keys, here = ("cpu", "cpu_capability", "torch", "blas"), machine()
    return (f"recorded on {', '.join(str(GOLDEN['machine'][k]) for k in keys)}; "
            f"this is {', '.join(str(here[k]) for k in keys)}")


@pytest.mark.parametrize("name", SETTINGS)
def test_short_run_matches_the_recorded_figures(name, first_runs):
    got, want = first_runs(name)[0], GOLDEN["runs"][name]
    assert got["steps"] == want["steps"]
    assert [m["step"] for m in got["metrics"]] == [m["step"] for m in want["metrics"]]
    assert [m.keys() for m in got["metrics"]] == [m.keys() for m in want["metrics"]]
    assert got["final"].keys() == want["final"].keys()
    pairs = [(f"step {w['step']} {key}", g[key], w[key]) for g, w in zip(got["metrics"], want["metrics"]) for key in w]
    pairs += [(f"final {split}", got["final"][split], nll) for split, nll in want["final"].items()]
    for what, g, w in pairs:
        if not isinstance(w, float):  # the step, a count
            assert g == w, f"{name} {what}: {g!r} != recorded {w!r}"
            continue
        assert math.isfinite(g) and relative(g, w) <= REL, (
            f"{name} {what}: {g!r} != recorded {w!r} (relative {relative(g, w):.1e} > {REL:g}; {where_from()})")


@pytest.mark.parametrize("name", SETTINGS)
def test_the_same_seeded_run_twice_is_bit_identical(name, first_runs, tmp_path):
    (first, first_dir), again = first_runs(name), run_model(name, tmp_path)
    assert again == first  # every metrics.jsonl figure but the timings, the final NLLs, the steps
    weights, weights_again = load_file(first_dir / "model.safetensors"), load_file(tmp_path / name / "model.safetensors")
    assert weights.keys() == weights_again.keys() and weights
    for key, tensor in weights.items():
        assert tensor.dtype == weights_again[key].dtype and torch.equal(tensor, weights_again[key]), f"{name} {key} differs"
