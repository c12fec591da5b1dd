"""Issue 19: resources running out. A full disk during a checkpoint or a resume, a folder that cannot
be written for a plot, a run file that is a pipe, a device or huge: each is one line on stderr, a
non-zero exit, nothing half-written, and a run directory left usable. (Millions of samples:
test_sample_stream.py.)
docs/reliability.md lists the promises and the tests that hold them.

A full disk is simulated: os.fsync of a chosen file of the run fails with ENOSPC (as it does on a
file system that allocates blocks at write-back; a write() failing first takes the same path),
which atomic writes and appends must undo. The files are found by their inode, so a write to a
temporary file counts as a write of the file it replaces. Tests run as root here, where a
chmod'ed folder stays writable, so a read-only folder is simulated too (os.access, and an open
that fails with EROFS)."""

import errno
import json
import os
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import makemore
from makemore.store import records
from makemore.checkpoint import (CONFIG, DIAGNOSTICS, LOCK, METRICS, MODEL, STATE, SUMMARY, TEMPORARY, RunDir, load_tensors,
                                 tensor_bytes)
from makemore.training.state import read as read_state
from makemore.constraints import CHUNK, chunk_size
from makemore.errors import MakemoreError, RunError

QUIET = {"quiet": True, "log": lambda msg: None}
SMALL = ["--model", "mlp", "--max-steps", "30", "--eval-interval", "10", "--batch-size", "16", "--lr-schedule", "constant",
         "--quiet", "--samples", "0"]


def one_line_error(status, err, expect=2, resumed=False):
    """The error is one line on stderr (after `resuming RUN at step N`, for a resume), and the status non-zero."""
    assert status == expect, err
    lines = err.strip().splitlines()
    if resumed:
        assert lines[0].startswith("resuming "), err
        lines = lines[1:]
    assert len(lines) == 1 and lines[0].startswith("makemore: error: ") and "Traceback" not in err, err


def name_of(fd: int, run: Path) -> str | None:
    """The run file an open descriptor writes: itself, or the file its temporary file will replace."""
    inode = os.fstat(fd).st_ino
    for path in run.iterdir() if run.is_dir() else ():
        if path.lstat().st_ino == inode:
            m = TEMPORARY.fullmatch(path.name)
            return m["name"] if m else path.name
    return None


def fill_disk(monkeypatch, run: Path, names: set[str], after: int = 0) -> list[str]:
    """From the (after + 1)-th write of one of `names` in `run` on, the disk is full: that write's
    fsync fails with ENOSPC, and so does every later write of those files. Returns the names of
    the writes that failed."""
    real, seen, failed = os.fsync, [0], []

    def fsync(fd):
        name = name_of(fd, run)
        if name in names:
            seen[0] += 1
            if seen[0] > after:
                failed.append(name)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return failed


def no_temporary_files(run: Path) -> bool:
    return not [p for p in run.iterdir() if p.name.endswith(".tmp")]


# ---- a full disk ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [METRICS, MODEL, STATE])
def test_a_full_disk_at_the_first_checkpoint_leaves_no_run_behind(small_data, tmp_path, run_cli, monkeypatch, name):
    out = tmp_path / "runs" / "run"  # train makes both folders
    failed = fill_disk(monkeypatch, out, {name})
    status, _, err = run_cli("train", "--data", small_data, "--out", out, *SMALL)
    one_line_error(status, err)
    assert failed == [name]
    assert f"cannot write {out / name}: the disk is full; the run had no checkpoint yet, so nothing of it was kept; " \
           "free some space and train again" in err
    assert not (tmp_path / "runs").exists()  # what it made is gone: no folder that looks like a run without a model
    monkeypatch.undo()
    status, _, err = run_cli("train", "--data", small_data, "--out", out, *SMALL)  # the same command, once there is space
    assert status == 0, err


def test_a_new_run_in_a_folder_that_was_there_removes_only_its_own_files(small_data, tmp_path, run_cli, monkeypatch):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    fill_disk(monkeypatch, out, {MODEL})
    status, _, err = run_cli("train", "--data", small_data, "--out", out, *SMALL)
    one_line_error(status, err)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # its config, metrics and lock file are gone


def test_a_counted_bigram_that_cannot_keep_its_model_leaves_nothing(small_data, tmp_path, run_cli, monkeypatch):
    fill_disk(monkeypatch, tmp_path / "run", {MODEL})
    status, _, err = run_cli("train", "--data", small_data, "--out", tmp_path / "run", "--model", "bigram", "--quiet",
                             "--samples", "0")
    one_line_error(status, err)
    assert "the disk is full" in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", [METRICS, MODEL, STATE, SUMMARY])
def test_a_full_disk_at_a_later_checkpoint_keeps_the_last_one_to_resume_from(small_data, tmp_path, run_cli, monkeypatch, name):
    straight = tmp_path / "straight"
    assert run_cli("train", "--data", small_data, "--out", straight, *SMALL)[0] == 0
    out = tmp_path / "run"
    # the second write of the file fails (the summary is written once: its first)
    failed = fill_disk(monkeypatch, out, {name}, after=0 if name == SUMMARY else 1)
    status, _, err = run_cli("train", "--data", small_data, "--out", out, *SMALL)
    one_line_error(status, err)
    assert failed == [name]
    assert (f"cannot write {out / name}: the disk is full; the run directory is as its last checkpoint left it; free some "
            f"space, then `makemore train --resume {out}` goes on from there") in err
    assert no_temporary_files(out) and (out / STATE).exists() and (out / MODEL).exists()
    assert all(line.endswith("}") for line in (out / METRICS).read_text().splitlines())  # no half-appended line
    makemore.load(out).sample(3, seed=0)  # usable as it is
    monkeypatch.undo()
    status, _, err = run_cli("train", "--resume", out, "--quiet", "--samples", "0")
    assert status == 0, err
    # and it ends exactly where the run that never met a full disk ends
    s, r = load_file(straight / STATE), load_file(out / STATE)
    assert s.keys() == r.keys() and all(torch.equal(s[k], r[k]) for k in s)
    val = lambda run: [r["val_loss"] for r in RunDir(run).read_metrics()]  # noqa: E731
    assert val(out) == val(straight)


@pytest.mark.parametrize("name", [CONFIG, METRICS, STATE])
def test_a_full_disk_during_a_resume_leaves_the_run_as_it_was(small_data, tmp_path, run_cli, monkeypatch, name):
    out = tmp_path / "run"
    assert run_cli("train", "--data", small_data, "--out", out, *SMALL, "--max-steps", "20")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != LOCK}
    # config.json is rewritten as the resume starts; metrics and state at its first checkpoint, step 30
    failed = fill_disk(monkeypatch, out, {name})
    status, _, err = run_cli("train", "--resume", out, "--max-steps", "40", "--quiet", "--samples", "0")
    one_line_error(status, err, resumed=name == STATE)  # the others fail before it says so
    assert failed == [name] and "the disk is full" in err and f"`makemore train --resume {out}` goes on from there" in err
    assert no_temporary_files(out)
    if name == CONFIG:  # nothing written yet: every file as it was
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != LOCK} == before
    assert (out / STATE).read_bytes() == before[STATE]  # the checkpoint to go on from is untouched
    monkeypatch.undo()
    status, _, err = run_cli("train", "--resume", out, "--max-steps", "40", "--quiet", "--samples", "0")
    assert status == 0, err
    assert [r["step"] for r in RunDir(out).read_metrics()] == [10, 20, 30, 40]


def test_an_append_that_fails_is_cut_back_off(tmp_path, monkeypatch):
    rd = RunDir(tmp_path)
    rd.append_metrics({"step": 1, "val_loss": 2.0})
    before = (tmp_path / METRICS).read_bytes()

    def half_then_full(fd, data):  # the disk fills half way through the line
        written = real(fd, bytes(data[: len(data) // 2]))
        monkeypatch.setattr(os, "write", lambda fd, data: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
        return written

    real = os.write
    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(MakemoreError, match="metrics.jsonl: the disk is full"):
        rd.append_metrics({"step": 2, "val_loss": 1.5})
    monkeypatch.undo()
    assert (tmp_path / METRICS).read_bytes() == before


def test_records_files_never_grow_past_what_is_read_back(tmp_path, monkeypatch):
    monkeypatch.setattr(records, "MAX_RECORDS_BYTES", 300)
    rd = RunDir(tmp_path)
    for step in range(1, 100):
        try:
            rd.append_metrics({"step": step, "val_loss": 1.0})
        except RunError as e:
            assert "would grow past 300 bytes" in str(e) and "--eval-interval" in str(e)
            break
    else:
        raise AssertionError("the bound was never met")
    assert (tmp_path / METRICS).stat().st_size <= 300 and len(rd.read_metrics()) == step - 1
    with pytest.raises(RunError, match="--diagnostics-interval"):
        rd.append_records(DIAGNOSTICS, [{"step": 1, "pad": "x" * 400}])
    assert not (tmp_path / DIAGNOSTICS).read_bytes()


# ---- a folder that cannot be written -------------------------------------------------------------


@pytest.fixture
def plotted(tmp_path, small_data):
    pytest.importorskip("matplotlib")
    makemore.train(data=str(small_data), out=tmp_path / "run", model="bigram", **QUIET)
    return tmp_path / "run"


def test_plot_into_a_folder_this_user_cannot_write_suggests_out(plotted, run_cli, monkeypatch):
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == plotted else real(path, mode, **kw))
    status, out, err = run_cli("plot", plotted, "--kind", "bigram")
    one_line_error(status, err)
    assert f"cannot write {plotted / 'bigram.png'}: the folder {plotted} is not writable here; pass --out" in err
    assert not (plotted / "bigram.png").exists()


def test_plot_onto_a_read_only_file_system_suggests_out(plotted, run_cli, monkeypatch, tmp_path):
    real = os.open

    def read_only(path, flags, *args, **kw):
        if flags & os.O_CREAT and Path(path).parent == plotted:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", read_only)
    status, out, err = run_cli("plot", plotted, "--kind", "loss")
    one_line_error(status, err)
    assert f"cannot write {plotted / 'loss.png'}: Read-only file system; pass --out with a PNG file" in err
    status, out, err = run_cli("plot", plotted, "--kind", "loss", "--out", tmp_path / "loss.png")  # as it suggests
    assert status == 0 and (tmp_path / "loss.png").exists(), err


def test_a_run_directory_that_cannot_be_made_says_where_to_go(small_data, tmp_path, run_cli, monkeypatch):
    real = os.mkdir

    def read_only(path, *args, **kw):
        if Path(path) == tmp_path / "run":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(path, *args, **kw)

    monkeypatch.setattr(os, "mkdir", read_only)
    status, _, err = run_cli("train", "--data", small_data, "--out", tmp_path / "run", *SMALL)
    one_line_error(status, err)
    assert f"cannot write {tmp_path / 'run'}: Read-only file system; choose another --out" in err


# ---- run files that are pipes, devices or huge ------------------------------------------------------


def within(seconds: float, call):
    """call(), failing the test if it has not returned within `seconds` (a read that blocks on a pipe)."""
    result = {}

    def run():
        try:
            result["value"] = call()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            result["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "it blocked"
    if "error" in result:
        raise result["error"]
    return result.get("value")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A small mlp run with diagnostics and a summary, copied by `run` for each test that breaks a file."""
    base = tmp_path_factory.mktemp("finished")
    items = (Path(makemore.__file__).parent / "datasets" / "names.txt").read_text().splitlines()[:300]
    (base / "small.txt").write_text("\n".join(items) + "\n")
    makemore.train(data=str(base / "small.txt"), out=base / "run", model="mlp", max_steps=20, eval_interval=10, batch_size=16,
                   diagnostics=True, diagnostics_interval=10, **QUIET)
    return base / "run"


@pytest.fixture
def run(finished, tmp_path):
    import shutil

    shutil.copytree(finished, tmp_path / "run")
    return tmp_path / "run"


READERS = {  # how each file is read, as eval, sample, plot and --resume read it
    CONFIG: lambda run: makemore.load(run),
    MODEL: lambda run: makemore.load(run),
    STATE: lambda run: read_state(run / STATE, tensor_bytes(makemore.load(run).model)),
    METRICS: lambda run: RunDir(run).read_metrics(),
    DIAGNOSTICS: lambda run: RunDir(run).read_records(DIAGNOSTICS),
    SUMMARY: lambda run: RunDir(run).read_summary(),
}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
@pytest.mark.parametrize("name", list(READERS))
def test_a_run_file_that_is_a_pipe_is_refused_at_once(run, name):
    (run / name).unlink()
    os.mkfifo(run / name)
    with pytest.raises(RunError) as refused:
        within(30, lambda: READERS[name](run))
    assert str(refused.value) == (f"{run / name} is damaged: it is not a regular file (a pipe, a device, or a link to "
                                  "one); restore the run directory from a copy or train it again")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
@pytest.mark.parametrize("name", list(READERS))
def test_a_run_file_linked_to_dev_zero_is_refused_at_once(run, name):
    (run / name).unlink()
    (run / name).symlink_to("/dev/zero")
    with pytest.raises(RunError, match="is not a regular file"):
        within(30, lambda: READERS[name](run))


def test_the_cli_says_so_in_one_line(run, run_cli):
    (run / STATE).unlink()
    (run / STATE).symlink_to("/dev/zero")
    status, _, err = run_cli("train", "--resume", run, "--quiet")
    one_line_error(status, err)
    assert "state.safetensors is damaged: it is not a regular file" in err


@pytest.mark.parametrize("name, limit", [(METRICS, 1 << 30), (DIAGNOSTICS, 1 << 30), (SUMMARY, 16 << 20), (CONFIG, 16 << 20)])
def test_json_files_past_their_bound_are_refused_from_their_size(run, name, limit):
    with open(run / name, "r+b") as f:  # sparse: the size without the disk space, and nothing to read but zeros
        f.truncate(limit + 1)
    with pytest.raises(RunError, match=f"it is {limit + 1:,} bytes, more than the {limit:,} such a file can be"):
        within(30, lambda: READERS[name](run))


def test_weights_larger_than_the_model_implies_are_refused_unread(run):
    with open(run / MODEL, "r+b") as f:
        f.truncate(8 << 30)  # 8 GB of zeros after tensors of a few kB: read whole, it would take that much memory
    with pytest.raises(RunError, match=r"model.safetensors is damaged: not a readable safetensors file \(its header describes "
                                       r"[\d,]+ bytes of tensors, but 8,589,9[\d,]+ follow it\)"):
        within(30, lambda: makemore.load(run))


def test_a_state_whose_header_describes_more_than_the_model_implies_is_refused_unread(run):
    model_bytes = tensor_bytes(makemore.load(run).model)
    tensors, meta = load_tensors(run / STATE)
    huge = 4 * model_bytes + (64 << 20)  # bigger than any state of this model at this step
    header = {"__metadata__": {"json": json.dumps(meta)}, "optimizer": {"dtype": "U8", "shape": [huge], "data_offsets": [0, huge]}}
    raw = json.dumps(header).encode()
    with open(run / STATE, "wb") as f:  # a well-formed file, as large as its header says: sparse, never read
        f.write(len(raw).to_bytes(8, "little") + raw)
        f.truncate(8 + len(raw) + huge)
    with pytest.raises(RunError, match=f"its header describes {huge:,} bytes of tensors, more than the"):
        within(30, lambda: read_state(run / STATE, model_bytes))


def test_a_header_length_past_its_bound_is_refused(run):
    raw = (run / MODEL).read_bytes()
    (run / MODEL).write_bytes((1 << 40).to_bytes(8, "little") + raw[8:])
    with pytest.raises(RunError, match="the header says it is 1,099,511,627,776 bytes long"):
        makemore.load(run)


# ---- sizes of draws --------------------------------------------------------------------------------


def test_draws_are_chunked_by_size_and_names_keep_theirs():
    assert chunk_size(15, 27) == CHUNK  # names: the chunks, and so the random stream, as before
    assert chunk_size(10**6, 27) == (1 << 24) // (10**6 + 8 * 27) == 16
    assert chunk_size(10, 20_000) == (1 << 24) // (10 + 8 * 20_000) == 104
    assert chunk_size(10**9, 10**9) == 1
