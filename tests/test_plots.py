"""Pictures and diagnostics: every plot kind from a tiny run, the file it writes and the numbers behind it."""

import copy
import json
import math
import struct
import sys
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import makemore
from makemore.checkpoint import DIAGNOSTICS, STATE, RunDir
from makemore.training.state import STEP_LOSS
from makemore.data import Dataset, Vocabulary, resolve_data, split_items
from makemore.diagnostics import BINS, Diagnostics
from makemore.lrfind import lr_find
from makemore.models import ModelConfig, build
from makemore.plot import bigram_counts, labels, plot
from makemore.trainer import TrainConfig, make_optimizer

pytest.importorskip("matplotlib")

QUIET = {"quiet": True, "log": lambda msg: None}
STEPS = 60


def png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    items = resolve_data("names").read_text(encoding="utf-8").splitlines()[:300]
    path = tmp_path_factory.mktemp("data") / "small.txt"
    path.write_text("\n".join(items) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def diag_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mlp"
    makemore.train(data=str(data), model="mlp", out=out, max_steps=STEPS, eval_interval=20, batch_size=16,
                   diagnostics=True, diagnostics_interval=10, **QUIET)
    return out


@pytest.fixture(scope="module")
def bigram_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "bigram"
    makemore.train(data=str(data), model="bigram", out=out, **QUIET)
    return out


def direct_bigram_counts(data) -> Counter:
    """Pairs of the training split counted one by one, as seed 002 does."""
    counts = Counter()
    for word in split_items(data.read_text().split(), 42)["train"]:
        chs = ["."] + list(word) + ["."]
        counts.update(zip(chs, chs[1:]))
    return counts


def table(picture) -> Counter:
    chars, counts = picture.data["chars"], picture.data["counts"]
    return Counter({(a, b): counts[i][j] for i, a in enumerate(chars) for j, b in enumerate(chars) if counts[i][j]})


# ---- every kind: the file and the numbers -------------------------------------------------


def test_loss_plot_draws_metrics_and_every_step_loss(diag_run, tmp_path):
    pic = plot(diag_run, "loss", tmp_path / "loss.png")
    assert png_size(pic.path) == pic.size == (1100, 550)
    metrics = [json.loads(line) for line in (diag_run / "metrics.jsonl").read_text().splitlines()]
    assert pic.data["eval_steps"] == [20, 40, 60]
    assert pic.data["train"] == [m["train_loss"] for m in metrics] and pic.data["val"] == [m["val_loss"] for m in metrics]
    losses = load_file(diag_run / STATE)[STEP_LOSS]
    assert len(pic.data["step_loss"]) == STEPS and pic.data["step_loss"] == losses.tolist()
    w = pic.data["window"]
    assert w == 20 and pic.data["smoothed"] == pytest.approx([losses[i : i + w].mean().item() for i in range(0, STEPS, w)])
    assert pic.data["band"][1] == pytest.approx([losses[i : i + w].quantile(0.75).item() for i in range(0, STEPS, w)])


def test_step_losses_are_the_batch_losses(diag_run, data):
    """The first recorded loss is the loss of the first batch on the freshly initialised model."""
    dataset = Dataset.load(str(data))
    torch.manual_seed(1337)
    model = build("mlp", ModelConfig(vocab_size=len(dataset.vocab), max_len=dataset.max_len, block_size=3, n_embd=10,
                                     n_hidden=200, batchnorm=True))
    batch = model.batches(dataset.packed("train"), 16, torch.Generator().manual_seed(1337), torch.device("cpu"))()
    assert load_file(diag_run / STATE)[STEP_LOSS][0].item() == pytest.approx(model.loss(batch).item(), rel=1e-6)


def test_bigram_heat_map_counts_are_the_bigram_counts(bigram_run, data, tmp_path):
    pic = plot(bigram_run, "bigram", tmp_path / "bigram.png")
    V = len(pic.data["chars"])
    assert V == 27 and png_size(pic.path) == pic.size == (int(V * 55 + 60), int(V * 55 + 100))
    model_counts = makemore.load(bigram_run).model.counts
    assert labels(Vocabulary([".", "a"])) == ["•", ".", "a"]  # a '.' in the data: the boundary is drawn apart
    assert pic.data["counts"] == model_counts.long().tolist()
    assert table(pic) == direct_bigram_counts(data)


def test_bigram_heat_map_of_another_model_counts_its_training_split(diag_run, data):
    run = makemore.load(diag_run)
    counts = bigram_counts(run)  # what `plot --kind bigram` draws, without drawing it again
    drawn = Counter({(run.vocab.shown(i), run.vocab.shown(j)): counts[i, j].item() for i, j in counts.nonzero().tolist()})
    assert drawn == direct_bigram_counts(data)


def test_embedding_points_are_the_embedding_rows(data, tmp_path):
    makemore.train(data=str(data), model="mlp", out=tmp_path / "e2", max_steps=5, n_embd=2, **QUIET)
    pic = plot(tmp_path / "e2", "embedding", tmp_path / "e2.png")
    assert png_size(pic.path) == pic.size == (800, 800)
    rows = makemore.load(tmp_path / "e2").model.wte.weight
    assert torch.equal(torch.tensor(pic.data["points"]), rows.detach())
    assert pic.data["chars"][:3] == [".", "a", "b"] and pic.data["explained"] is None


def test_wide_embeddings_are_projected_on_their_principal_components(diag_run, tmp_path):
    pic = plot(diag_run, "embedding", tmp_path / "e.png")
    rows = makemore.load(diag_run).model.wte.weight.detach().double().numpy()
    import numpy as np

    centred = rows - rows.mean(0)
    _, s, vt = np.linalg.svd(centred)
    expected = centred @ vt[:2].T
    points = np.array(pic.data["points"])
    for k in range(2):  # a principal axis is defined up to its sign
        assert min(abs(points[:, k] - expected[:, k]).max(), abs(points[:, k] + expected[:, k]).max()) < 1e-4
    assert pic.data["explained"] == pytest.approx((s**2 / (s**2).sum())[:2].tolist(), rel=1e-4)


def test_diagnostic_plots_draw_the_recorded_numbers(diag_run, tmp_path):
    records = RunDir(diag_run).read_records(DIAGNOSTICS)
    assert [r["step"] for r in records] == list(range(0, STEPS, 10))
    last = records[-1]

    act = plot(diag_run, "activations", tmp_path / "a.png")
    assert png_size(act.path) == act.size == (1500, 550)
    (layer,) = act.data["layers"]
    assert act.data["step"] == last["step"] and layer["mean"] == last["layers"][0]["mean"]
    assert sum(d * (layer["x"][1] - layer["x"][0]) for d in layer["density"]) == pytest.approx(1.0)
    assert act.data["over_training"]["saturated"]["tanh"] == [100 * r["layers"][0]["saturated"] for r in records]

    early = plot(diag_run, "activations", tmp_path / "a0.png", step=15)
    assert early.data["step"] == 10

    grad = plot(diag_run, "gradients", tmp_path / "g.png")
    assert png_size(grad.path) == grad.size == (1500, 550)
    assert [w["label"].split()[0] for w in grad.data["weights"]] == ["wte.weight", "c_fc.weight", "c_proj.weight"]
    assert [w["grad_data"] for w in grad.data["weights"]] == [p["grad_data"] for p in last["params"]]

    upd = plot(diag_run, "updates", tmp_path / "u.png")
    assert png_size(upd.path) == upd.size == (1200, 550)
    assert upd.data["steps"] == [r["step"] for r in records]
    assert upd.data["update_data"]["c_fc.weight"] == [r["params"][1]["update_data"] for r in records]


def test_diagnostics_match_a_direct_recomputation(data, tmp_path):
    dataset = Dataset.load(str(data))
    torch.manual_seed(0)
    model = build("mlp", ModelConfig(vocab_size=len(dataset.vocab), max_len=dataset.max_len, block_size=3, n_embd=10,
                                     n_hidden=64, batchnorm=True))
    cfg = TrainConfig(batch_size=64, optimizer="sgd", lr=0.1)
    batch = model.batches(dataset.packed("train"), cfg.batch_size, torch.Generator().manual_seed(cfg.seed), torch.device("cpu"))()
    x, y = batch
    before = copy.deepcopy(model)
    opt = make_optimizer(model, cfg)
    tmp_path.mkdir(exist_ok=True)
    diag = Diagnostics(model, RunDir(tmp_path), interval=1)
    with diag.watch(0, 0.1):
        loss = model.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    diag.flush()
    (record,) = RunDir(tmp_path).read_records(DIAGNOSTICS)

    # the lecture's way, by hand, on a copy of the model before the step
    t = torch.tanh(before.bn(before.c_fc(before.wte(x).flatten(1))))
    t.retain_grad()
    F.cross_entropy(before.c_proj(t), y).backward()
    (layer,) = record["layers"]
    assert layer["name"] == "tanh" and layer["mean"] == pytest.approx(t.mean().item(), abs=1e-6)
    assert layer["std"] == pytest.approx(t.std().item(), rel=1e-5)
    assert layer["saturated"] == pytest.approx((t.abs() > 0.97).float().mean().item())
    lo, hi = max(t.min().item(), (t.mean() - 4 * t.std()).item()), min(t.max().item(), (t.mean() + 4 * t.std()).item())
    assert layer["range"] == pytest.approx([lo, hi], abs=1e-6)
    hist = torch.histc(t.detach(), BINS, lo, hi)
    assert sum(abs(a - b) for a, b in zip(layer["hist"], hist.tolist())) <= 2  # a value on a bin edge may fall either way
    assert sum(layer["hist"]) + layer["outside"] == t.numel()
    assert layer["grad"]["std"] == pytest.approx(t.grad.std().item(), rel=1e-4)
    for p in record["params"]:
        old, new = before.get_parameter(p["name"]), model.get_parameter(p["name"])
        assert p["grad_data"] == pytest.approx((old.grad.std() / old.std()).item(), rel=1e-4)
        # SGD: the update is lr * grad, as the lecture computes it
        assert p["update_data"] == pytest.approx(math.log10((0.1 * old.grad).std().item() / old.std().item()), abs=1e-4)
        assert p["update_data"] == pytest.approx(math.log10((new - old).std().item() / old.std().item()), abs=1e-4)


def test_diagnostics_and_step_losses_survive_resume(data, tmp_path):
    options = {"model": "mlp", "eval_interval": 10, "batch_size": 16, "lr_schedule": "constant",
               "diagnostics": True, "diagnostics_interval": 5, **QUIET}
    makemore.train(data=str(data), out=tmp_path / "straight", max_steps=30, **options)
    makemore.train(data=str(data), out=tmp_path / "resumed", max_steps=20, **options)
    (tmp_path / "resumed" / DIAGNOSTICS).open("a").write('{"step": 25, "cut short by a crash')  # records past the checkpoint
    makemore.resume(tmp_path / "resumed", max_steps=30, **QUIET)
    records = lambda run: RunDir(tmp_path / run).read_records(DIAGNOSTICS)  # noqa: E731
    assert [r["step"] for r in records("resumed")] == [0, 5, 10, 15, 20, 25]
    assert records("resumed") == records("straight")
    losses = lambda run: load_file(tmp_path / run / STATE)[STEP_LOSS]  # noqa: E731
    assert len(losses("resumed")) == 30 and torch.equal(losses("resumed"), losses("straight"))


# ---- lr-find --------------------------------------------------------------------------


def test_lr_find_curve_has_one_point_per_step(data, tmp_path):
    result = lr_find(data=str(data), model="mlp", steps=40, lr_min=1e-3, lr_max=0.1, batch_size=16, quiet=True)
    assert len(result.lrs) == len(result.losses) == len(result.smoothed) == 40 and not result.diverged
    assert result.lrs[0] == pytest.approx(1e-3) and result.lrs[-1] == pytest.approx(0.1)
    ratios = [b / a for a, b in zip(result.lrs, result.lrs[1:])]
    assert ratios == pytest.approx([ratios[0]] * 39)  # exponential sweep
    assert result.best_lr == result.lrs[min(range(40), key=result.smoothed.__getitem__)]
    assert result.suggested == pytest.approx(result.best_lr / 3)
    from makemore.plot import lr_curve

    pic = lr_curve(result, tmp_path / "lr.png")
    assert png_size(pic.path) == pic.size == (1100, 550) and len(pic.data["lrs"]) == 40


def test_lr_find_stops_when_the_loss_blows_up(data):
    result = lr_find(data=str(data), model="mlp", steps=60, lr_min=1.0, lr_max=1e6, batch_size=16, quiet=True)
    assert result.diverged and len(result.lrs) == len(result.losses) < 60


def test_lr_find_command(data, tmp_path, run_cli):
    status, out, err = run_cli("lr-find", "--data", data, "--model", "mlp", "--steps", "30", "--batch-size", "16",
                               "--out", tmp_path / "lr.png", "--quiet")
    assert status == 0, err
    assert out.startswith("suggested lr: ") and png_size(tmp_path / "lr.png") == (1100, 550)
    suggested = out.split()[2]
    assert f"to train with it: makemore train --data {data} --model mlp --lr {suggested}\n" in out


# ---- TensorBoard ----------------------------------------------------------------------


def test_tensorboard_logs_losses_and_learning_rate_across_a_resume(data, tmp_path, run_cli):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    status, out, err = run_cli("train", "--data", data, "--model", "mlp", "--out", run, "--max-steps", "20", "--eval-interval", "10",
                               "--batch-size", "16", "--quiet", "--samples", "0", "--tensorboard")
    assert status == 0, err
    status, out, err = run_cli("train", "--resume", run, "--max-steps", "30", "--quiet", "--samples", "0")
    assert status == 0, err
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e.step for e in events.Scalars("loss/val")] == [10, 20, 30]
    assert [e.value for e in events.Scalars("loss/val")] == pytest.approx([m["val_loss"] for m in metrics])
    assert [e.value for e in events.Scalars("lr")] == pytest.approx([m["lr"] for m in metrics])
    assert [e.step for e in events.Scalars("loss/step")] == list(range(30))
    assert [e.value for e in events.Scalars("loss/step")] == pytest.approx(load_file(run / STATE)[STEP_LOSS].tolist())


# ---- bad input: one line, exit 2 ----------------------------------------------------------


def assert_user_error(status, out, err, *words):
    assert status == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert all(w in err for w in words), err


def test_bad_plot_requests(diag_run, bigram_run, tmp_path, run_cli):
    assert_user_error(*run_cli("plot", diag_run, "--kind", "nonsense"), "invalid choice")
    assert_user_error(*run_cli("plot", bigram_run, "--kind", "activations"), "--diagnostics")
    assert_user_error(*run_cli("plot", bigram_run, "--kind", "embedding"), "embedding")
    assert_user_error(*run_cli("plot", tmp_path / "nope", "--kind", "loss"), "not found")
    assert_user_error(*run_cli("plot", diag_run, "--kind", "loss", "--out", tmp_path / "loss.jpg"), ".png")
    assert_user_error(*run_cli("plot", diag_run, "--kind", "loss", "--out", tmp_path / "no" / "loss.png"), "does not exist")
    assert_user_error(*run_cli("plot", diag_run, "--kind", "activations", "--step", "-1"), "--step")


def test_without_matplotlib_plot_says_how_to_install_it(diag_run, data, tmp_path, run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    assert_user_error(*run_cli("plot", diag_run, "--kind", "loss", "--out", tmp_path / "x.png"), "makemore[plot]")
    assert_user_error(*run_cli("lr-find", "--data", data, "--out", tmp_path / "lr.png"), "makemore[plot]")
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "lr.png").exists()


def test_bad_training_requests(data, tmp_path, run_cli, monkeypatch):
    args = ["train", "--data", data, "--out", tmp_path / "run", "--quiet"]
    assert_user_error(*run_cli(*args, "--model", "bigram", "--diagnostics"), "counting")
    assert_user_error(*run_cli(*args, "--model", "mlp", "--diagnostics-interval", "5"), "--diagnostics")
    assert_user_error(*run_cli(*args, "--model", "mlp", "--diagnostics", "--diagnostics-interval", "0"), "at least 1")
    assert_user_error(*run_cli("lr-find", "--data", data, "--model", "bigram", "--out", tmp_path / "lr.png"), "counting")
    assert_user_error(*run_cli("lr-find", "--data", data, "--lr-min", "1", "--lr-max", "0.1", "--out", tmp_path / "lr.png"))
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    assert_user_error(*run_cli(*args, "--model", "mlp", "--tensorboard"), "makemore[tensorboard]")
    assert not (tmp_path / "run").exists()


def test_the_loss_of_a_counted_bigram_is_its_one_evaluation(bigram_run, tmp_path):
    # the bigram is fitted by counting: no step losses to smooth (that was a traceback from nanquantile)
    picture = plot(bigram_run, "loss", tmp_path / "loss.png")
    assert picture.data["step_loss"] == [] and picture.data["smoothed"] == [] and len(picture.data["val"]) == 1
    assert png_size(tmp_path / "loss.png") == picture.size


def test_embedding_labels_do_not_hide_each_other(diag_run, tmp_path):
    """Characters close in the embedding ("e" under "n" in the lectures' picture) are moved apart:
    no two labels overlap as drawn, and each still belongs to its point."""
    pic = plot(diag_run, "embedding", tmp_path / "e.png")
    ax = pic.figure.axes[0]
    renderer = pic.figure.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert [t.get_text() for t in ax.texts] == pic.data["chars"]
    overlapping = [(ax.texts[i].get_text(), ax.texts[j].get_text()) for i in range(len(boxes)) for j in range(i)
                   if boxes[i].overlaps(boxes[j]) and boxes[i].intersection(boxes[i], boxes[j]).width > 1
                   and boxes[i].intersection(boxes[i], boxes[j]).height > 1]
    assert overlapping == []
