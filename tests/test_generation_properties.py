"""Property test of the sampling constraints: whatever combination is asked of a trained model,
every item returned (or found before NotEnough) honours every constraint, and a combination no
item can meet is refused with one OptionError line before any drawing."""

import tempfile
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import makemore
from makemore.config import OptionError
from makemore.constraints import NotEnough

LETTERS = "aeilnr"  # common in names, so many combinations can be met
TEXT = st.text(alphabet=LETTERS + "zq", max_size=2)
MIN_LEN = st.none() | st.integers(min_value=1, max_value=7)
MAX_LEN = st.none() | st.integers(min_value=1, max_value=12)


@pytest.fixture(scope="module")
def model(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("generation-properties") / "run"
    makemore.train(data=str(shared_data), model="bigram", out=str(out), quiet=True, log=lambda m: None)
    return makemore.load(out, device="cpu"), set(shared_data.read_text().split())


def impossible(longest: int, prefix, suffix, contains, min_len, max_len, unseen: bool) -> bool:
    """The combinations the sampler must refuse up front (the rules of Constraints.check, restated)."""
    cap = longest if max_len is None else min(max_len, longest)
    return (unseen or (min_len is not None and max_len is not None and min_len > max_len) or (min_len or 1) > longest
            or (prefix != "" and len(prefix) >= cap) or len(suffix) > cap or len(contains) > cap)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(min_value=1, max_value=15), seed=st.integers(min_value=0, max_value=2**32),
       prefix=TEXT, suffix=TEXT, contains=TEXT, min_len=MIN_LEN, max_len=MAX_LEN,
       unique=st.booleans(), novel=st.booleans(), exclude=st.lists(st.text(alphabet=LETTERS, min_size=1, max_size=5), max_size=30),
       unseen=st.integers(0, 4).map(lambda i: i == 4), temperature=st.sampled_from([0.3, 1.0, 2.0]))
def test_every_item_honours_every_constraint(model, n, seed, prefix, suffix, contains, min_len, max_len, unique, novel,
                                             exclude, unseen, temperature):
    run, training = model
    if unseen:  # a character the model never saw, in one of the texts
        suffix += "#"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "exclude.txt"
        path.write_text("\n".join(exclude) + "\n", encoding="utf-8")
        options = dict(prefix=prefix, suffix=suffix, contains=contains, min_len=min_len, max_len=max_len, unique=unique,
                       novel=novel, exclude=path, temperature=temperature)
        try:
            items = run.sample(n, seed=seed, max_draws=400, **options)
        except NotEnough as e:
            items = e.found
            assert len(items) < n
            event("not enough")
        except OptionError as e:
            assert impossible(run.model_config.max_len, prefix, suffix, contains, min_len, max_len, unseen), str(e)
            assert "\n" not in str(e)
            event("refused")
            return
        else:
            assert len(items) == n
            event("all found")
    assert not impossible(run.model_config.max_len, prefix, suffix, contains, min_len, max_len, unseen)
    longest = run.model_config.max_len if max_len is None else min(max_len, run.model_config.max_len)
    for item in items:
        assert item.startswith(prefix) and item.endswith(suffix) and contains in item
        assert max(1, min_len or 1) <= len(item) <= longest
        assert item not in exclude
        assert not novel or item not in training
    if unique or novel:
        assert len(set(items)) == len(items)
