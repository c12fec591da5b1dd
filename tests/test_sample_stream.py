"""Issue 19: millions of samples. `makemore sample` writes each chunk of items as it is drawn
(Run.stream), to stdout or, for --out, to a temporary file renamed at the end, so -n 2,000,000
takes the memory of a few thousand items (benchmarks/sample_memory.py measures it). The items and
their formats are exactly those of Run.sample's list."""

import sys

import pytest

import makemore
from makemore.constraints import CHUNK
from makemore.errors import MakemoreError
from makemore.output import render

QUIET = {"quiet": True, "log": lambda msg: None}


def one_line_error(status, err):
    assert status == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.fixture(scope="module")
def bigram(tmp_path_factory):
    out = tmp_path_factory.mktemp("bigram") / "run"
    makemore.train(data="names", out=out, model="bigram", **QUIET)
    return out


class Recorder:
    """A stdout that notes how many chunks had been drawn when each write came."""

    def __init__(self, drawn: list):
        self.drawn, self.writes, self.text = drawn, [], []

    def write(self, text: str) -> int:
        self.writes.append(len(self.drawn))
        self.text.append(text)
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("fmt", ["txt", "json", "csv"])
def test_sample_writes_each_chunk_as_it_is_drawn(bigram, monkeypatch, fmt):
    from makemore import api, cli

    drawn, real = [], api.generate
    monkeypatch.setattr(api, "generate", lambda *a, **kw: drawn.append(1) or real(*a, **kw))
    out = Recorder(drawn)
    monkeypatch.setattr(sys, "stdout", out)
    n = 3 * CHUNK + 5
    assert cli.main(["sample", str(bigram), "-n", str(n), "--seed", "3", "--format", fmt]) == 0
    monkeypatch.undo()
    assert len(drawn) == 4 and out.writes[0] <= 1 < out.writes[-1]  # the first items went out before the last were drawn
    items = makemore.load(bigram).sample(n, seed=3)  # the very items the list API gives, in its format
    assert "".join(out.text) == render(items, fmt, makemore.load(bigram).score(items) if fmt == "csv" else None)


def test_sample_out_is_whole_or_nothing_while_streaming(bigram, run_cli, tmp_path, monkeypatch):
    from makemore import api

    real, calls = api.generate, []

    def fails_on_the_third(*a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise MakemoreError("the model gives probabilities that are not finite numbers")
        return real(*a, **kw)

    monkeypatch.setattr(api, "generate", fails_on_the_third)
    status, _, err = run_cli("sample", bigram, "-n", str(5 * CHUNK), "--out", tmp_path / "items.txt")
    one_line_error(status, err)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary
    monkeypatch.undo()
    status, _, err = run_cli("sample", bigram, "-n", str(5 * CHUNK), "--seed", "1", "--out", tmp_path / "items.txt")
    assert status == 0 and f"wrote {5 * CHUNK} items" in err
    assert (tmp_path / "items.txt").read_text().splitlines() == makemore.load(bigram).sample(5 * CHUNK, seed=1)


def test_unique_streams_too_and_never_repeats(bigram, run_cli):
    status, out, err = run_cli("sample", bigram, "-n", "3000", "--seed", "0", "--unique")
    items = out.splitlines()
    assert status == 0 and len(items) == len(set(items)) == 3000
    assert items == makemore.load(bigram).sample(3000, seed=0, unique=True)
