"""Issue #11: sampling constraints."""

from pathlib import Path

import pytest
import torch

import makemore
from makemore import api
from makemore.config import OptionError
from makemore.constraints import NotEnough, budget
from makemore.data import Vocabulary
from makemore.models import ModelConfig, build
from makemore.sample import generate


@pytest.fixture(scope="module")
def run_dir(shared_data, tmp_path_factory) -> Path:
    """A bigram counted on 300 names: its items look like names, and it samples fast."""
    out = tmp_path_factory.mktemp("generation") / "run"
    makemore.train(data=str(shared_data), model="bigram", out=str(out), quiet=True, log=lambda m: None)
    return out


@pytest.fixture(scope="module")
def run(run_dir):
    return makemore.load(run_dir, device="cpu")


def one_line_error(status, err, expect=2):
    assert status == expect, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


# --- constraints, one at a time -------------------------------------------------------------

def test_suffix(run):
    items = run.sample(30, seed=1, suffix="a")
    assert len(items) == 30 and all(item.endswith("a") for item in items)
    assert all(i.endswith("na") for i in run.sample(5, seed=1, suffix="na"))


def test_contains(run):
    items = run.sample(30, seed=2, contains="li")
    assert len(items) == 30 and all("li" in item for item in items)


def test_min_len_shapes_items_without_rejecting(run):
    # max_draws=n: had any item been rejected, n draws could not give n items
    items = run.sample(200, seed=3, min_len=7, max_draws=200)
    assert len(items) == 200 and min(map(len, items)) >= 7
    plain = run.sample(200, seed=3)
    assert min(map(len, plain)) < 7  # without it the model makes shorter items


def test_max_len_ends_items_at_n(run):
    items = run.sample(200, seed=4, max_len=3)  # no filter: the end is forced at 3 characters
    assert len(items) == 200 and max(map(len, items)) == 3
    assert 1 <= min(map(len, items))
    both = run.sample(100, seed=4, min_len=4, max_len=4, max_draws=100)
    assert {len(i) for i in both} == {4}


def test_prefix_with_lengths(run):
    items = run.sample(50, seed=5, prefix="ma", min_len=5, max_len=6)
    assert all(i.startswith("ma") and 5 <= len(i) <= 6 for i in items)


def test_exclude_file(run, tmp_path):
    plain = run.sample(100, seed=6)
    common = sorted(set(plain))[:10]
    assert common
    path = tmp_path / "used.txt"
    path.write_text("\r\n".join(["  " + common[0] + " ", *common[1:], ""]), encoding="utf-8")
    items = run.sample(100, seed=6, exclude=path)  # a pathlib.Path is accepted, as elsewhere
    assert len(items) == 100 and not set(items) & set(common)
    assert set(plain) - set(common) & set(items)  # the rest still comes out


def test_an_empty_exclude_file_excludes_nothing(run, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert run.sample(20, seed=7, exclude=str(empty)) == run.sample(20, seed=7)


def test_unique(run):
    plain = run.sample(300, seed=8)
    assert len(set(plain)) < 300  # a bigram repeats its common items...
    items = run.sample(300, seed=8, unique=True)
    assert len(items) == 300 == len(set(items))  # ...unique does not


def test_novel_is_unique_and_outside_the_data(run, shared_data):
    known = set(shared_data.read_text().split())
    items = run.sample(50, seed=9, novel=True)
    assert len(items) == 50 == len(set(items)) and not set(items) & known


def test_combined(run, shared_data):
    known = set(shared_data.read_text().split())
    items = run.sample(10, seed=10, novel=True, suffix="a", contains="e", min_len=4, max_len=8)
    assert len(items) == 10 == len(set(items))
    assert all(i.endswith("a") and "e" in i and 4 <= len(i) <= 8 and i not in known for i in items)


# --- the draw budget and NotEnough ----------------------------------------------------------

def test_the_budget_rule():
    assert [budget(n) for n in (1, 20, 21, 1000)] == [1000, 1000, 1050, 50000]


def test_not_enough_stops_at_the_budget_with_what_it_found(run):
    # top_k=1 makes one item over and over: unique finds one, then draws until the budget is spent
    with pytest.raises(NotEnough) as e:
        run.sample(5, seed=0, top_k=1, unique=True)
    assert len(e.value.found) == 1 and e.value.draws == budget(5) == 1000 and e.value.wanted == 5
    assert str(e.value).startswith("found only 1 of 5 distinct items in 1000 draws;") and e.value.exit_code == 1
    with pytest.raises(NotEnough) as e:
        run.sample(5, seed=0, top_k=1, unique=True, max_draws=300)
    assert e.value.draws == 300
    assert api.NotEnoughNovel is NotEnough  # the name makemore serve catches


def test_not_enough_describes_the_constraints(run, tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("ab\n")
    with pytest.raises(NotEnough) as e:
        run.sample(3, seed=0, novel=True, suffix="q", contains="zz", exclude=path, max_draws=50)
    assert str(e.value).startswith(f"found only 0 of 3 novel items (ending with 'q', containing 'zz', not in {path}) in 50 draws")


# --- impossible constraints: one line at once, before any drawing --------------------------

@pytest.fixture
def no_drawing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("sampled before refusing an impossible constraint")

    monkeypatch.setattr(api, "generate", refuse)


@pytest.mark.parametrize("options, message", [
    ({"suffix": "aZ"}, "suffix has characters the model never saw in training ('Z')"),
    ({"contains": "é"}, "contains has characters the model never saw in training ('é')"),
    ({"prefix": "#"}, "prefix has characters the model never saw in training ('#')"),
    ({"min_len": 40}, "min_len is 40, but this model makes items of at most {longest} characters"),
    ({"min_len": 5, "max_len": 4}, "min_len 5 is more than max_len 4; no item can meet both"),
    ({"prefix": "mar", "max_len": 3}, "prefix has 3 characters, which leaves no room under max_len 3"),
    ({"suffix": "anna", "max_len": 3}, "suffix has 4 characters, more than max_len 3"),
    ({"contains": "a" * 40}, "contains has 40 characters, more than this model's longest item ({longest} characters)"),
    ({"exclude": "/no/such/file.txt"}, "exclude: cannot read /no/such/file.txt"),
])
def test_impossible_constraints(run, no_drawing, options, message):
    with pytest.raises(OptionError) as e:
        run.sample(5, **options)
    text = str(e.value)
    assert message.format(longest=run.model_config.max_len) in text and "\n" not in text


def test_an_exclude_that_is_a_folder_or_binary(run, no_drawing, tmp_path):
    with pytest.raises(OptionError, match="is a directory"):
        run.sample(5, exclude=tmp_path)
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"ab\0cd")
    with pytest.raises(OptionError, match="binary"):
        run.sample(5, exclude=binary)


def test_wrong_types_are_refused_by_the_declarations(run):
    for options, message in [({"min_len": 0}, "min_len must be at least 1"), ({"unique": 1}, "unique must be True or False"),
                             ({"suffix": None}, "suffix must be given"), ({"exclude": 3}, "exclude must be text")]:
        with pytest.raises(OptionError, match=message):
            run.sample(5, **options)


def test_min_len_where_the_model_allows_only_the_end():
    # counts without smoothing: after "b" the model has only ever seen the end, so it must end
    # there even before min_len, rather than give NaN probabilities; the filter then drops it
    vocab = Vocabulary(["a", "b"])
    model = build("bigram", ModelConfig(vocab_size=3, max_len=6, smoothing=0.0))
    model.counts.copy_(torch.tensor([[0.0, 1, 1], [1, 1, 1], [1, 0, 0]]))  # rows: after end, a, b
    items = generate(model, vocab, 200, 6, torch.Generator().manual_seed(0), min_len=4)
    assert all(len(i) >= 4 or i.endswith("b") for i in items)
    assert any(len(i) < 4 for i in items) and any(len(i) >= 4 for i in items)
