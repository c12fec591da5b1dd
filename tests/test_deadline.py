"""Time limits: work done in chunks stops at the first check after its limit (deadline.py), and
without a limit nothing is checked."""

import pytest

import makemore
from makemore.deadline import TimeLimit, check, time_limit
from makemore.explain import explain_many

QUIET = dict(quiet=True, log=lambda m: None)


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_data):
    """A counted bigram with 300 labels (one per name)."""
    root = tmp_path_factory.mktemp("deadline")
    names = shared_data.read_text(encoding="utf-8").split()
    (root / "many.txt").write_text("".join(f"{name}\tL{i}\n" for i, name in enumerate(names)), encoding="utf-8")
    makemore.train(data=str(root / "many.txt"), model="bigram", out=root / "run", **QUIET)
    return makemore.load(root / "run", device="cpu")


def test_a_time_limit_stops_sampling_scoring_and_explaining_between_chunks(run, ticking_clock, count_calls):
    steps, forwards = count_calls(run.model, "step"), count_calls(run.model, "forward")
    with ticking_clock():
        with pytest.raises(TimeLimit, match="stopped after 5 s, its time limit"), time_limit(5):
            run.sample(1000, seed=0, suffix="zzq")  # matches nothing: would draw 50,000 items
        assert len(steps) == 5  # the step of the start token, and one after each of the four checks before 5 s
        with pytest.raises(TimeLimit), time_limit(3):
            run.score(["emma", "ava"] * 50)  # 100 items x 300 labels: 30,000 rows
        assert len(forwards) == 2
        steps.clear()
        with pytest.raises(TimeLimit), time_limit(3):
            explain_many(run.model, run.vocab, ["emmeline"], prior=run.label_prior())
        assert len(steps) == 2
    # without a limit nothing is checked: the same clock would be past any deadline
    with ticking_clock() as ticks:
        assert len(run.sample(5, seed=0)) == 5 and next(ticks) == 0


def test_a_limit_belongs_to_its_block_and_its_thread(ticking_clock):
    import threading

    with ticking_clock():
        with time_limit(2):
            check()  # 1 s
            with pytest.raises(TimeLimit, match="stopped after 2 s"):
                check()
            elsewhere = []
            thread = threading.Thread(target=lambda: elsewhere.append(check()))  # another thread: no limit
            thread.start()
            thread.join()
            assert elsewhere == [None]
        check()  # after the block: none
