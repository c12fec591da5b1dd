"""--dtype and --compile on the CPU: the code the GPU runs too, minus the CUDA-only fp16 scaler."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

import makemore

QUIET = {"quiet": True, "log": lambda msg: None}
# mlp with SGD at lr 0.1: large enough steps that a change of arithmetic shows in the losses
OPTIONS = {"model": "mlp", "max_steps": 30, "eval_interval": 10, "batch_size": 16, "seed": 5}


def step_losses(run) -> torch.Tensor:
    return load_file(run / "state.safetensors")["train.step_loss"]


def test_bf16_autocast_trains_on_the_cpu_close_to_float32_but_not_identically(shared_data, tmp_path):
    full = makemore.train(data=str(shared_data), out=tmp_path / "float32", **QUIET, **OPTIONS)
    half = makemore.train(data=str(shared_data), out=tmp_path / "bf16", dtype="bf16", **QUIET, **OPTIONS)
    a, b = step_losses(full.run_dir), step_losses(half.run_dir)
    assert torch.isfinite(b).all() and len(b) == 30
    assert not torch.equal(a, b)  # the forward really ran in bfloat16
    assert (a - b).abs().max() < 0.02
    assert half.final["val"].nll == pytest.approx(full.final["val"].nll, abs=0.01)
    assert json.loads((half.run_dir / "config.json").read_text())["train_config"]["dtype"] == "bf16"
    # evaluated and saved in float32: the kept weights are float32
    assert all(t.dtype == torch.float32 for t in load_file(half.run_dir / "model.safetensors").values() if t.is_floating_point())


def test_dtype_and_compile_may_change_on_resume_as_they_are_how_not_what(shared_data, tmp_path):
    makemore.train(data=str(shared_data), out=tmp_path / "run", **QUIET, **{**OPTIONS, "max_steps": 10})
    resumed = makemore.resume(tmp_path / "run", max_steps=20, dtype="bf16", **QUIET)
    assert resumed.steps == 20
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train_config"]["dtype"] == "bf16"


def test_fp16_off_cuda_is_refused_in_one_line_before_anything_is_written(shared_data, tmp_path, run_cli):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is here: fp16 is allowed")
    status, out, err = run_cli("train", "--data", shared_data, "--out", tmp_path / "run", "--model", "mlp", "--dtype", "fp16",
                               "--device", "cpu")
    assert status == 2 and not out
    assert err == "makemore: error: --dtype fp16 trains on CUDA GPUs only (it needs a gradient scaler there); " \
                  "on the cpu use bf16 or float32\n"
    assert not (tmp_path / "run").exists()


def test_compiled_training_computes_what_the_model_computes(shared_data, tmp_path):
    if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        pytest.skip("torch.compile on the CPU needs a C++ compiler, and none is on the PATH")
    options = {**OPTIONS, "max_steps": 4, "eval_interval": 4}
    from torch._dynamo.utils import counters  # what torch's own tests read to see that a graph was compiled

    plain = makemore.train(data=str(shared_data), out=tmp_path / "plain", **QUIET, **options)
    graphs = counters["stats"]["unique_graphs"]
    compiled = makemore.train(data=str(shared_data), out=tmp_path / "compiled", compile=True, **QUIET, **options)
    assert counters["stats"]["unique_graphs"] > graphs
    assert torch.allclose(step_losses(compiled.run_dir), step_losses(plain.run_dir), rtol=1e-5)
    a, b = load_file(compiled.run_dir / "model.safetensors"), load_file(plain.run_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-4, atol=1e-6) for k in a)
