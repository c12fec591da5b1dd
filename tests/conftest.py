
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

# The models under test are tiny: one thread runs them as fast as two, and cannot collapse when
# other processes compete for this machine's two cores (OpenMP threads spin-waiting on each other).
torch.set_num_threads(1)
os.environ["OMP_NUM_THREADS"] = "1"  # and training in these tests keeps to it (device.cpu_threads)
# a data file past prepare.CACHE_FROM_BYTES is prepared into the cache: the tests' own, not the user's
os.environ["MAKEMORE_CACHE"] = tempfile.mkdtemp(prefix="makemore-test-cache-")

from makemore.data import resolve_data

NAMES = Path(__file__).resolve().parents[2] / "shared" / "data" / "names.txt"


@pytest.fixture
def names_path() -> Path:
    """The lectures' dataset, beside the repository as in CI; tests that pin its numbers skip without it."""
    if not NAMES.exists():
        pytest.skip(f"reference dataset not found at {NAMES} (the lectures' names.txt; CI has it beside the repo)")
    return NAMES


def write_small_data(folder: Path) -> Path:
    items = resolve_data("names").read_text(encoding="utf-8").splitlines()[:300]
    path = folder / "small.txt"
    path.write_text("\n".join(items) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def small_data(tmp_path) -> Path:
    """300 real names from the built-in dataset: enough to train and split, fast to run."""
    return write_small_data(tmp_path)


@pytest.fixture(scope="session")
def shared_data(tmp_path_factory) -> Path:
    """The same 300 names, in one file for the whole session: for runs that tests only read."""
    return write_small_data(tmp_path_factory.mktemp("shared"))


@pytest.fixture
def run_cli(capsys):
    """Run `makemore ARGS` in-process; returns (exit status, stdout, stderr)."""
    from makemore.cli import main

    def run(*args):
        try:
            status = main([str(a) for a in args])
        except SystemExit as e:  # argparse usage errors
            status = e.code
        out, err = capsys.readouterr()
        return status, out, err

    return run




@pytest.fixture
def ticking_clock():
    """A context manager: inside it, makemore.deadline's clock advances one second at each
    reading, so a time limit of N seconds runs out at the N-th check, whatever the machine's speed."""
    import itertools
    from contextlib import contextmanager

    from makemore import deadline

    @contextmanager
    def ticking():
        ticks, real = itertools.count(), deadline.clock
        deadline.clock = lambda: float(next(ticks))
        try:
            yield ticks
        finally:
            deadline.clock = real

    return ticking


@pytest.fixture
def count_calls(monkeypatch):
    """count_calls(obj, name): wrap obj.name (for this test) so that each call appends to the list returned."""

    def wrap(obj, name: str) -> list:
        calls = []
        inner = getattr(obj, name)
        monkeypatch.setattr(obj, name, lambda *a, **k: calls.append(1) or inner(*a, **k))
        return calls

    return wrap


@contextmanager
def real_server(runs, limits=None, runs_dir=None):
    """makemore serve's own server (serve.server: uvicorn with its head timer) over a socket on a
    free 127.0.0.1 port, in a thread; yields the socket. With `runs_dir`, it trains lists posted
    to it there. Needs the serve extra."""
    from makemore.serve import Limits, create_app, listen, server

    limits = limits or Limits()
    sock = listen("127.0.0.1", 0)
    uv = server(create_app(dict(runs), limits, runs_dir=runs_dir), limits, log_level="warning")
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(1000):
        if uv.started:
            break
        time.sleep(0.01)
    try:
        yield sock
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()
