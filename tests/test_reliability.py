"""Issue #10: damaged run directories, concurrent writers, leftovers of killed writes, odd input
files, signals, permissions and empty samples. docs/reliability.md says which test holds which
promise. Property-based tests of the same readers are in test_reliability_properties.py."""

import codecs
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import makemore
from makemore.checkpoint import (CONFIG, LOCK, METRICS, MODEL, STATE, SUMMARY, RunDir, atomic_write, load_tensors,
                                 save_tensors)
from makemore.training.state import read as read_state
from makemore.training.state import restore_optimizer
from makemore.config import DEFAULT_ITEM_LENGTH
from makemore.data import Dataset, Vocabulary, WindowBatches, fingerprint, read_items, resolve_data
from makemore.errors import DataError, RunError
from makemore.models import ModelConfig, build
from makemore.sample import generate

from makemore import trainer as train_module  # noqa: E402

QUIET = {"quiet": True, "log": lambda msg: None}
TINY = ["--max-steps", "30", "--eval-interval", "15", "--batch-size", "16", "--quiet", "--samples", "0"]
SRC = str(Path(makemore.__file__).resolve().parents[1])


def train_small(data, out, **options):
    options = {"model": "mlp", "max_steps": 30, "eval_interval": 15, "batch_size": 16, **options}
    return makemore.train(data=str(data), out=out, **QUIET, **options)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """One small trained mlp run, copied by `run` for each test that damages it."""
    base = tmp_path_factory.mktemp("pristine")
    items = resolve_data("names").read_text(encoding="utf-8").splitlines()[:300]
    data = base / "small.txt"
    data.write_text("\n".join(items) + "\n", encoding="utf-8")
    train_small(data, base / "run")
    return base / "run"


@pytest.fixture
def run(pristine, tmp_path):
    shutil.copytree(pristine, tmp_path / "run")
    return tmp_path / "run"


def assert_user_error(status, out, err, expect=2):
    assert status == expect, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def edit_config(run: Path, change) -> None:
    cfg = json.loads((run / CONFIG).read_text())
    change(cfg)
    (run / CONFIG).write_text(json.dumps(cfg))


def default_signals() -> None:
    """In the child: Ctrl-C and SIGTERM as a terminal gives them. A harness that runs the tests in
    the background of a shell script starts them with SIGINT ignored, which makemore (rightly)
    keeps ignoring; the signal tests must not depend on how they were started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def command(*args, **kwargs) -> subprocess.Popen:
    """`python -m makemore ARGS` as a real process, with this checkout on the path."""
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    kwargs.setdefault("preexec_fn", default_signals)
    return subprocess.Popen([sys.executable, "-m", "makemore", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kwargs)


# ---- 3. damaged or foreign run directories ------------------------------------------------------


def set_key(path, value):
    def change(cfg):
        *parents, last = path
        for key in parents:
            cfg = cfg[key]
        cfg[last] = value
    return change


def drop_key(path):
    def change(cfg):
        *parents, last = path
        for key in parents:
            cfg = cfg[key]
        del cfg[last]
    return change


@pytest.mark.parametrize("change, says", [
    (set_key(["model"], 7), '"model" is an integer'),
    (set_key(["model_config"], [1, 2]), '"model_config" is a list'),
    (set_key(["model_config", "n_embd"], "10"), '"model_config"["n_embd"] must be a whole number (got \'10\')'),
    (set_key(["model_config", "n_embd"], 10.0), '"model_config"["n_embd"] must be a whole number (got 10.0)'),
    (set_key(["model_config", "batchnorm"], 1), '"model_config"["batchnorm"] must be True or False (got 1)'),
    (set_key(["model_config", "max_len"], 10**9), '"model_config"["max_len"] is 1000000000, not a whole number in 1..1000000'),
    (set_key(["model_config", "n_hidden"], 0), '"model_config"["n_hidden"] must be at least 1 (got 0)'),
    (set_key(["model_config", "dropout"], float("nan")), "must be a finite number"),
    (drop_key(["model_config", "vocab_size"]), '"model_config"["vocab_size"] is null'),
    (drop_key(["vocab"]), 'no "vocab"'),
    (set_key(["vocab", 0], "ab"), '"vocab"[0] is "ab", not one character'),
    (set_key(["vocab", 1], "a"), "lists a character twice"),
    (lambda cfg: cfg["vocab"].append("#"), "the two disagree"),
    (set_key(["train_config"], None), '"train_config" is null'),
    (set_key(["train_config", "lr"], "fast"), '"train_config"["lr"] must be a number (got \'fast\')'),
    (set_key(["train_config", "bogus"], 1), 'unknown setting "bogus"'),
    (drop_key(["data", "source"]), '"data" has no "source"'),
    (set_key(["data", "split_seed"], "42"), '"data"["split_seed"] is a string'),
    (set_key(["data", "fingerprint"], None), '"data"["fingerprint"] is null'),
], ids=lambda v: v if isinstance(v, str) else "")
def test_damaged_config_is_named_in_one_line(run, run_cli, change, says):
    edit_config(run, change)
    for cmd in (["sample", run], ["eval", run], ["score", run, "emma"], ["train", "--resume", run, "--quiet"]):
        status, out, err = run_cli(*cmd)
        assert_user_error(status, out, err)
        assert f"{run / CONFIG} is damaged" in err and says in err and "restore" in err, err


@pytest.mark.parametrize("content, says", [
    (b"[1, 2]", "a JSON list, not an object"),
    (b'{"model": "mlp", "vocab": \xff}', "not UTF-8"),
    (b"{" * 50_000, "not JSON"),  # nested too deep for the parser: a RecursionError before
    (b'{"model": "mlp"', "not JSON"),
    (b" " * (16 << 20) + b"{}", "it is 16,777,218 bytes, more than the 16,777,216 such a file can be"),
])
def test_config_that_is_not_a_json_object(run, run_cli, content, says):
    (run / CONFIG).write_bytes(content)
    status, out, err = run_cli("sample", run)
    assert_user_error(status, out, err)
    assert says in err


def test_model_settings_that_cannot_build_name_the_config(run, run_cli):
    edit_config(run, set_key(["model"], "wavenet"))  # block_size 3 is no power of two
    status, out, err = run_cli("sample", run)
    assert_user_error(status, out, err)
    assert "config.json is damaged" in err and "power of two" in err


def test_vocabulary_that_disagrees_with_the_weights_is_refused(run, run_cli):
    # a consistent config.json whose vocabulary has one more character than the weights were trained on
    edit_config(run, lambda cfg: (cfg["vocab"].append("#"), cfg["model_config"].update(vocab_size=len(cfg["vocab"]) + 1)))
    v = json.loads((run / CONFIG).read_text())["model_config"]["vocab_size"]
    status, out, err = run_cli("sample", run)
    assert_user_error(status, out, err)
    assert (f"model.safetensors does not match the model in config.json beside it: wte.weight has shape [{v - 1}, 10] "
            f"where the model needs [{v}, 10] (a vocabulary of another size)") in err


def test_a_huge_model_in_config_is_refused_from_the_weights_header(run, run_cli, monkeypatch):
    # 16,384 hidden units (the most an option allows) over a 3x10 window: built for real it would take
    # a moment and 5 MB; the check compares shapes on the meta device first, so the real build never happens
    edit_config(run, set_key(["model_config", "n_hidden"], 16384))
    built = []
    original = makemore.api.build
    monkeypatch.setattr(makemore.api, "build", lambda *a: built.append(torch.get_default_device()) or original(*a))
    status, out, err = run_cli("sample", run)
    assert_user_error(status, out, err)
    assert "c_fc.weight has shape [200, 30] where the model needs [16384, 30]" in err
    assert [d.type for d in built] == ["meta"]


def test_weights_of_another_dtype_are_refused(run, run_cli):
    tensors, _ = load_tensors(run / MODEL)
    save_tensors(run / MODEL, {k: v.double() if v.is_floating_point() else v for k, v in tensors.items()})
    status, out, err = run_cli("sample", run)
    assert_user_error(status, out, err)
    assert "float64 values where the model needs float32" in err


@pytest.mark.parametrize("damage", ["truncated", "garbled header", "empty"])
def test_damaged_weights(run, run_cli, damage):
    raw = (run / MODEL).read_bytes()
    data = {"truncated": raw[: len(raw) // 2], "garbled header": b"\xff" * 8 + raw[8:], "empty": b""}[damage]
    (run / MODEL).write_bytes(data)
    status, out, err = run_cli("sample", run)
    assert_user_error(status, out, err)
    assert "model.safetensors is damaged: not a readable safetensors file" in err


def metrics_lines(run: Path) -> list[bytes]:
    return (run / METRICS).read_bytes().splitlines(keepends=True)


def test_metrics_cut_mid_append_is_skipped_and_the_next_append_starts_a_fresh_line(run):
    rd = RunDir(run)
    records = rd.read_metrics()
    assert [r["step"] for r in records] == [15, 30]
    whole = (run / METRICS).read_bytes()
    (run / METRICS).write_bytes(whole + b'{"step": 45, "train_lo')  # a crash in the middle of an append
    assert rd.read_metrics() == records
    rd.append_metrics({"step": 45, "train_loss": 1.0, "val_loss": 2.0})
    assert [r["step"] for r in rd.read_metrics()] == [15, 30, 45]
    assert (run / METRICS).read_bytes() == whole + b'{"step": 45, "train_loss": 1.0, "val_loss": 2.0}\n'


def test_metrics_last_line_complete_but_without_newline_is_kept(run):
    rd = RunDir(run)
    whole = (run / METRICS).read_bytes()
    (run / METRICS).write_bytes(whole + b'{"step": 45}')
    assert [r["step"] for r in rd.read_metrics()] == [15, 30, 45]
    rd.append_metrics({"step": 60})
    assert [r["step"] for r in rd.read_metrics()] == [15, 30, 45, 60]


@pytest.mark.parametrize("bad, says", [
    (b'{"step": 15, "train_lo\n', "line 1 is not JSON"),
    (b"[15, 2.5, 2.6]\n", "line 1 is a JSON list, not an object"),
    (b'{"step": 15, "val_loss": "\xff"}\n', "line 1 is not UTF-8 text"),
    (b'{"val_loss": 2.5}\n', 'line 1 has no "step"'),
    (b'{"step": 15, "val_loss": "low"}\n', 'line 1 has a "val_loss" that is a string'),
])
def test_damaged_metrics_line_in_the_middle_is_an_error_not_a_silent_loss(run, run_cli, bad, says):
    lines = metrics_lines(run)
    (run / METRICS).write_bytes(bad + b"".join(lines))  # the damaged line first, good records after it
    before = (run / METRICS).read_bytes()
    with pytest.raises(RunError, match="line 1") as e:
        RunDir(run).read_metrics()
    assert says in str(e.value) and "delete that line" in str(e.value)
    # resume reads the metrics to cut them back to its checkpoint: it must stop, not drop the good records
    status, out, err = run_cli("train", "--resume", run, "--max-steps", "45", "--quiet", "--samples", "0")
    assert_user_error(status, out, err)
    assert f"{run / METRICS} is damaged: line 1" in err
    assert (run / METRICS).read_bytes() == before


def test_resume_after_a_cut_metrics_line_keeps_every_record(run, run_cli):
    (run / METRICS).write_bytes((run / METRICS).read_bytes() + b'{"step": 4')
    status, out, err = run_cli("train", "--resume", run, "--max-steps", "45", "--quiet", "--samples", "0")
    assert status == 0, err
    assert [r["step"] for r in RunDir(run).read_metrics()] == [15, 30, 45]


def optimizer_blob(opt) -> dict[str, torch.Tensor]:
    """The optimiser's state as the trainer saves it: torch.save bytes in a uint8 tensor."""
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    return {"optimizer": torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)}


def test_optimiser_state_of_another_optimiser_is_refused(tmp_path):
    # torch itself accepts SGD's state into AdamW, or moments of the wrong shape, and fails later or not at all
    model = build("mlp", ModelConfig(vocab_size=5, max_len=4, block_size=2, n_embd=3, n_hidden=4))
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.zeros(2, 3, dtype=torch.long)).sum().backward()
    sgd.step()
    tensors = optimizer_blob(sgd)
    adamw = torch.optim.AdamW(model.parameters(), lr=0.1)
    with pytest.raises(RunError, match="written by another optimiser than AdamW"):
        restore_optimizer(adamw, tensors, tmp_path / STATE)
    again = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    restore_optimizer(again, tensors, tmp_path / STATE)  # the same kind loads
    assert torch.equal(again.state_dict()["state"][0]["momentum_buffer"], sgd.state_dict()["state"][0]["momentum_buffer"])
    sgd.state[next(iter(sgd.state))]["momentum_buffer"] = torch.zeros(7)
    with pytest.raises(RunError, match="has shape \\[7\\]"):
        restore_optimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), optimizer_blob(sgd), tmp_path / STATE)
    garbled = {"optimizer": torch.randint(0, 255, (200,), dtype=torch.uint8)}
    with pytest.raises(RunError, match="optimiser state cannot be read"):
        restore_optimizer(again, garbled, tmp_path / STATE)


@pytest.mark.parametrize("damage, says", [
    (lambda t, m: t.pop("rng.torch"), "has no rng.torch"),
    (lambda t, m: t.update({"rng.batches": t["rng.batches"].float()}), "rng.batches is a 1-d float32 tensor, not a 1-d uint8"),
    (lambda t, m: m.update(step="20"), '"step" is "20"'),
    (lambda t, m: m.pop("best_val"), 'has no "best_val"'),
    (lambda t, m: t.pop("optimizer"), "has no optimizer"),
])
def test_damaged_training_state_is_named(run, damage, says):
    tensors, meta = read_state(run / STATE)  # a good one reads
    damage(tensors, meta)
    save_tensors(run / STATE, tensors, meta)
    with pytest.raises(RunError, match="state.safetensors is damaged") as e:
        read_state(run / STATE)
    assert says in str(e.value)


# ---- 4. concurrent writers and readers ----------------------------------------------------------


def hold_lock(run: Path) -> subprocess.Popen:
    """Another process that holds RUN's lock until its stdin closes."""
    code = textwrap.dedent(f"""
        import sys
        from makemore.checkpoint import RunDir
        with RunDir({str(run)!r}).lock():
            print("locked", flush=True)
            sys.stdin.read()
    """)
    env = {**os.environ, "PYTHONPATH": SRC}
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert holder.stdout.readline() == "locked\n"
    return holder


def test_a_second_process_cannot_take_the_lock(run):
    holder = hold_lock(run)
    try:
        with pytest.raises(RunError) as e:
            with RunDir(run).lock():
                pass
        assert str(e.value) == (f"{run} is in use by another makemore process (pid {holder.pid}); "
                                "wait for it or choose another --out")
    finally:
        holder.stdin.close()
        holder.wait()
    with RunDir(run).lock():  # free again once the holder is gone
        assert (run / LOCK).read_text().strip() == str(os.getpid())


def test_the_lock_is_released_when_its_holder_is_killed(run):
    holder = hold_lock(run)
    holder.kill()
    holder.wait()
    with RunDir(run).lock():  # the kernel dropped the dead process's lock: no stale lock file to delete by hand
        pass


TRAINER_LOCKS = ".lock()" in Path(train_module.__file__).read_text()


@pytest.mark.skipif(not TRAINER_LOCKS, reason="train.py does not take RunDir.lock() yet (call site for the trainer)")
def test_a_second_train_on_the_same_run_is_refused(run):
    holder = hold_lock(run)  # stands for a training process: it holds the lock the same way
    try:
        proc = command("train", "--resume", run, "--max-steps", "45", "--quiet", "--samples", "0")
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and "Traceback" not in err
        assert err.strip() == (f"makemore: error: {run} is in use by another makemore process (pid {holder.pid}); "
                               "wait for it or choose another --out")
    finally:
        holder.stdin.close()
        holder.wait()


WRITER = textwrap.dedent("""
    import sys, torch
    from makemore.checkpoint import save_tensors
    path, n = sys.argv[1], int(sys.argv[2])
    for k in range(n):
        save_tensors(path, {"a": torch.full((300, 100), float(k)), "b": torch.full((1000,), float(k))}, {"k": k})
    print("done", flush=True)
""")


def test_readers_racing_a_writer_always_see_one_whole_file(tmp_path):
    path = tmp_path / MODEL
    save_tensors(path, {"a": torch.full((300, 100), -1.0), "b": torch.full((1000,), -1.0)}, {"k": -1})
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "100"], stdout=subprocess.PIPE, text=True, env=env)
    seen = set()
    try:
        while writer.poll() is None or not seen:
            tensors, meta = load_tensors(path)
            k = meta["k"]
            # every tensor and the metadata come from the same write
            assert bool((tensors["a"] == k).all()) and bool((tensors["b"] == k).all())
            seen.add(k)
    finally:
        writer.wait()
    assert writer.returncode == 0
    assert load_tensors(path)[1]["k"] == 99
    assert not list(tmp_path.glob(".*.tmp"))


# ---- 5. leftovers of killed writes, runs killed before their first checkpoint --------------------


def test_clean_temporary_removes_only_our_temporary_files(run):
    ours = [".state.safetensors.k3j9x_2a.tmp", ".model.safetensors.0123456789ab.tmp", ".config.json.abcdefgh.tmp",
            ".metrics.jsonl.zzzzzz.tmp", ".summary.json.q1w2e3r4.tmp"]
    foreign = [".notes.txt.abcdefgh.tmp", "state.safetensors.abcdefgh.tmp", ".model.safetensors.tmp", "mine.tmp",
               ".loss.png.abcdefgh.tmp"]  # a plot being written right now by `makemore plot`
    for name in ours + foreign:
        (run / name).write_bytes(b"x" * 100)
    with RunDir(run).lock():  # taking the lock cleans
        pass
    assert sorted(p.name for p in run.iterdir() if p.name.endswith(".tmp")) == sorted(foreign)
    assert RunDir(run).clean_temporary() == []


def test_a_write_killed_half_way_leaves_only_a_temporary_file_that_the_next_open_removes(run):
    code = textwrap.dedent(f"""
        import os, torch
        import makemore.checkpoint as c
        real = os.replace
        os.replace = lambda a, b: os.kill(os.getpid(), 9)  # killed after writing, before the rename
        c.save_tensors({str(run / STATE)!r}, {{"x": torch.zeros(1000)}})
    """)
    before = (run / STATE).read_bytes()
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC})
    assert proc.returncode == -9
    left = list(run.glob(".state.safetensors.*.tmp"))
    assert len(left) == 1 and (run / STATE).read_bytes() == before
    with RunDir(run).lock():
        pass
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))


def test_is_unstarted_means_config_and_nothing_else_of_ours(run):
    rd = RunDir(run)
    assert not rd.is_unstarted()
    for name in (MODEL, STATE, METRICS, SUMMARY):
        (run / name).unlink()
    (run / ".state.safetensors.abcdefgh.tmp").write_bytes(b"x")  # killed during its first checkpoint
    with rd.lock():
        assert rd.is_unstarted()
    (run / METRICS).write_text('{"step": 1}\n')  # killed inside its first checkpoint, before the state
    assert rd.is_unstarted()
    (run / STATE).write_bytes(b"x")  # a checkpoint to resume from
    assert not rd.is_unstarted()
    (run / STATE).unlink()
    (run / SUMMARY).write_text("{}")  # a finished run (e.g. the counted bigram, which has no state)
    assert not rd.is_unstarted()
    assert not RunDir(run / "nope").is_unstarted()


# ---- 6. input files ----------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_refused_at_once(tmp_path):
    fifo = tmp_path / "items.fifo"
    os.mkfifo(fifo)
    proc = command("train", "--data", fifo, "--out", tmp_path / "run", "--quiet")
    out, err = proc.communicate(timeout=120)  # reading the pipe would wait for a writer forever
    assert_user_error(proc.returncode, out, err)
    assert "is not a regular file (a pipe or a device)" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_a_device_is_refused_before_reading(run_cli, tmp_path):
    status, out, err = run_cli("train", "--data", "/dev/zero", "--out", tmp_path / "run", "--quiet")
    assert_user_error(status, out, err)
    assert "/dev/zero is not a regular file" in err


@pytest.mark.parametrize("encoding, bom", [("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE),
                                           ("utf-32-le", codecs.BOM_UTF32_LE), ("utf-32-be", codecs.BOM_UTF32_BE)])
def test_utf16_and_utf32_with_a_bom_are_read_like_utf8(tmp_path, encoding, bom):
    text = "emma\r\nzoë\n\n  olivia \n𝒜lice\n"
    utf8 = tmp_path / "utf8.txt"
    utf8.write_bytes(text.encode("utf-8"))
    other = tmp_path / f"{encoding}.txt"
    other.write_bytes(bom + text.encode(encoding))
    assert read_items(other) == read_items(utf8) == ["emma", "zoë", "olivia", "𝒜lice"]


def test_utf16_that_is_not_valid_is_named(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + "emma\n".encode("utf-16-le") + b"\x00\xd8")  # a lone surrogate
    with pytest.raises(DataError, match="starts like UTF-16 text but is not .*save it as UTF-8"):
        read_items(path)


def test_lines_end_only_at_newline(tmp_path):
    path = tmp_path / "items.txt"
    path.write_bytes("a\x0cb\r\nc\x85d\u2028e\u2029f\x1dg\nh\x0bi\n \x0c\n".encode("utf-8"))
    # form feed, NEL, line/paragraph separators, group separator, vertical tab: characters inside an
    # item (str.splitlines would have made nine items of these three)
    assert read_items(path) == ["a\x0cb", "c\x85d\u2028e\u2029f\x1dg", "h\x0bi"]


def test_the_fingerprint_of_ordinary_files_is_unchanged(names_path):
    # the sha256 of "\n".join(items) as the reader before issue #10 gave them (str.splitlines):
    # existing run directories still match their data
    assert fingerprint(read_items(resolve_data("names"))) == "facec480c37137d71c4cad183a22a06cb3e2bd202c630993264a78896d282cea"
    assert fingerprint(read_items(names_path)) == "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d"


def test_an_enormous_line_is_refused_with_its_line_number(small_data, tmp_path, run_cli):
    path = tmp_path / "long.txt"
    lines = small_data.read_text().splitlines()
    path.write_text("\n".join(lines[:150] + ["x" * 100_000] + lines[150:]) + "\n")
    status, out, err = run_cli("train", "--data", path, "--out", tmp_path / "run", "--quiet")
    assert_user_error(status, out, err)
    assert err.strip() == (f"makemore: error: {path} line 151 has 100,000 characters; the limit is 1,000 "
                           "(--max-item-length); split or drop that line, or raise the limit")
    assert not (tmp_path / "run").exists()


def test_item_length_limit_is_inclusive_and_adjustable(tmp_path):
    path = tmp_path / "items.txt"
    path.write_text("\n".join(["a" * DEFAULT_ITEM_LENGTH, "b"]) + "\n")
    assert len(read_items(path)[0]) == DEFAULT_ITEM_LENGTH
    path.write_text("\n".join(["b", "a" * (DEFAULT_ITEM_LENGTH + 1)]) + "\n")
    with pytest.raises(DataError, match="line 2 has 1,001 characters; the limit is 1,000"):
        read_items(path)
    assert read_items(path, max_item_chars=2000)[1] == "a" * (DEFAULT_ITEM_LENGTH + 1)
    with pytest.raises(DataError, match="line 2 has 1,001 characters; the limit is 10 "):
        Dataset.load(str(path), max_item_chars=10)


# ---- 7. signals ----------------------------------------------------------------------------------


def torch_is_loading(pid: int) -> bool:
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see when PyTorch is loading")
@pytest.mark.parametrize("signum, status, says", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_a_signal_while_pytorch_imports_gives_one_line(signum, status, says):
    proc = command("models")
    while proc.poll() is None and not torch_is_loading(proc.pid):
        time.sleep(0.001)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    if out:  # the command got to its end before the signal: nothing to check this time
        pytest.skip("the process finished before the signal arrived")
    assert proc.returncode == status and err.strip() == f"makemore: {says}"


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see when PyTorch is loading")
def test_a_signal_the_process_was_started_ignoring_stays_ignored():
    # a background job of a shell script starts with SIGINT ignored; makemore must not take it back
    proc = command("models", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    while proc.poll() is None and not torch_is_loading(proc.pid):
        time.sleep(0.001)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "mlp" in out and err == ""


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_training_stops_like_ctrl_c(small_data, tmp_path, signum, status):
    out_dir = tmp_path / "run"
    proc = command("train", "--data", small_data, "--model", "mlp", "--out", out_dir, "--max-steps", "1000000",
                   "--eval-interval", "20", "--batch-size", "16", "--quiet", "--samples", "0")
    while proc.poll() is None and not (out_dir / METRICS).exists():
        time.sleep(0.01)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == status and "Traceback" not in err, err
    assert "interrupted at step" in err and out.startswith(f"run: {out_dir}")
    summary = json.loads((out_dir / SUMMARY).read_text())
    assert summary["interrupted"] is True and summary["step"] >= 20
    makemore.load(out_dir).sample(3, seed=0)  # the kept model loads


def test_sigterm_in_process_returns_143(small_data, tmp_path, run_cli, monkeypatch):
    calls = {"n": 0}
    original = WindowBatches.__call__  # the mlp's batches

    def terminate_at_step_25(self):
        calls["n"] += 1
        if calls["n"] == 25:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self)

    monkeypatch.setattr(WindowBatches, "__call__", terminate_at_step_25)
    before = signal.getsignal(signal.SIGTERM)
    status, out, err = run_cli("train", "--data", small_data, "--model", "mlp", "--out", tmp_path / "run", *TINY[:-2],
                               "--max-steps", "100")
    assert status == 143 and "interrupted at step 2" in err, err
    assert signal.getsignal(signal.SIGTERM) is before  # cli.main put the handler back


# ---- 9. permissions ------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002], ids=["022", "077", "002"])
def test_run_files_respect_the_umask(small_data, tmp_path, umask):
    old = os.umask(umask)
    try:
        result = train_small(small_data, tmp_path / "run", max_steps=20, eval_interval=10)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in result.run_dir.iterdir()}
    assert set(modes) >= {CONFIG, MODEL, STATE, METRICS, SUMMARY}
    assert set(modes.values()) == {0o666 & ~umask}, modes


def test_atomic_write_keeps_the_old_content_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    atomic_write(path, b"old")
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.json"]


# ---- 10. no empty items ----------------------------------------------------------------------------


def eager_to_end() -> tuple:
    """A bigram-nn whose boundary logit is huge everywhere: left alone it ends every item at once."""
    vocab = Vocabulary(list("abc"))
    model = build("bigram-nn", ModelConfig(vocab_size=len(vocab), max_len=6))
    with torch.no_grad():
        model.W.zero_()
        model.W[:, 0] = 50.0
    return model, vocab


def test_sampling_never_returns_an_empty_item():
    model, vocab = eager_to_end()
    g = torch.Generator().manual_seed(0)
    items = generate(model, vocab, 200, 6, g)
    assert all(len(item) == 1 for item in items)  # one character, then the boundary it is eager for
    assert set(items) == {"a", "b", "c"}
    for kw in ({"top_k": 1}, {"top_p": 0.5}, {"temperature": 0.01}):
        assert all(generate(model, vocab, 20, 6, g, **kw))


def test_with_a_prefix_the_item_may_end_right_after_it():
    model, vocab = eager_to_end()
    items = generate(model, vocab, 20, 6, torch.Generator().manual_seed(0), prefix="ab")
    assert items == ["ab"] * 20


def test_sample_novel_without_the_data_does_not_suggest_a_missing_option(run, run_cli, tmp_path):
    edit_config(run, set_key(["data", "source"], str(tmp_path / "gone.txt")))
    status, out, err = run_cli("sample", run, "--novel", "-n", "3")
    assert_user_error(status, out, err)
    assert "--data" not in err and f"put the original file back at {tmp_path / 'gone.txt'}" in err
    status, out, err = run_cli("eval", run)  # eval has --data, so it says so
    assert_user_error(status, out, err)
    assert "pass the original file with --data PATH" in err
