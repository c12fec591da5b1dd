"""Issue 19: every limit is one constant of config.py, read by training and by loading alike, so
whatever `train` accepts and writes, `load`, `sample` and `eval` open; and one step past a limit
is refused before anything is written. Data is generated at the edges (the longest item, the
largest vocabulary, the most and the longest labels), trained briefly, then opened."""

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import makemore
from makemore.checkpoint import CONFIG, RunDir
from makemore.config import (MAX_CHARS, MAX_ITEM_LENGTH, MAX_JSON_BYTES, MAX_LABEL_LENGTH, MAX_LABELS, MAX_SEED,
                             ModelConfig, TrainConfig)
from makemore.data import MIN_ITEMS, Dataset, Vocabulary, split_items
from makemore.errors import MakemoreError
from makemore.trainer import run_config

QUIET = {"quiet": True, "log": lambda msg: None}
SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
FEW = settings(max_examples=3, deadline=None, suppress_health_check=SLOW_OK)
ONCE = settings(max_examples=1, deadline=None, suppress_health_check=SLOW_OK)
short_item = st.text(alphabet="abcde", min_size=1, max_size=8)
# the tiniest models that train at each edge: a bigram's table is a vocabulary squared, too big at the largest
TINY_MLP = {"model": "mlp", "block_size": 1, "n_embd": 1, "n_hidden": 1, "batchnorm": False, "max_steps": 1,
            "eval_interval": 1, "batch_size": 1}


def in_test_split(n: int, seed: int) -> int:
    """The index of an item that the seeded split puts in the test split (the last tenth)."""
    order = split_items(list(range(n)), seed)
    return order["test"][0]


def lines_at(edge: str, over: bool, data) -> tuple[list[str], dict]:
    """Lines of a data file at (or one past) `edge`, and the training options that reach it."""
    seed = data.draw(st.sampled_from([0, 42, MAX_SEED]), label="split_seed")
    options = {"split_seed": seed}
    if edge == "longest item":
        # one item of the most characters training takes, kept out of the bigram's training split (so
        # that samples stay short), beside a few short ones: the bigram is fitted, evaluated and sampled
        lines = data.draw(st.lists(short_item, min_size=MIN_ITEMS - 1, max_size=MIN_ITEMS + 5), label="short items")
        lines.insert(in_test_split(len(lines) + 1, seed), data.draw(st.sampled_from("abz")) * (MAX_ITEM_LENGTH + over))
        return lines, {**options, "model": "bigram", "max_item_length": MAX_ITEM_LENGTH}
    if edge == "largest vocabulary":
        chars = [chr(0x4E00 + i) for i in range(MAX_CHARS + over)]  # CJK ideographs: letters, no marks or spaces
        width = data.draw(st.integers(8, 40), label="item length")
        return ["".join(chars[i : i + width]) for i in range(0, len(chars), width)], {**options, **TINY_MLP, "seed": MAX_SEED}
    n = MAX_LABELS + over
    length = data.draw(st.sampled_from([1, MAX_LABEL_LENGTH]), label="label length")
    labels = [f"{i:0{length}d}" if length >= 4 else f"{i}" for i in range(n)]
    items = data.draw(st.lists(short_item, min_size=n, max_size=n), label="items")
    if over and data.draw(st.booleans(), label="a label too long instead"):
        labels = labels[:MAX_LABELS]
        items = items[:MAX_LABELS]
        labels[data.draw(st.integers(0, MAX_LABELS - 1))] = "L" * (MAX_LABEL_LENGTH + 1)
    return [f"{item}\t{label}" for item, label in zip(items, labels)], {**options, "model": "bigram"}


@pytest.mark.parametrize("over", [False, True], ids=["at the limit", "one past it"])
@pytest.mark.parametrize("edge", ["longest item", "most labels"])
@FEW
@given(data=st.data())
def test_whatever_train_accepts_load_sample_and_eval_open(tmp_path_factory, edge, over, data):
    train_then_open(tmp_path_factory.mktemp("edge"), edge, over, data)


@pytest.mark.parametrize("over", [False, True], ids=["at the limit", "one past it"])
@ONCE  # a vocabulary this large costs every evaluation a logit per token at each of its ~20,000 positions: seconds
@given(data=st.data())
def test_the_largest_vocabulary_trains_and_opens(tmp_path_factory, over, data):
    train_then_open(tmp_path_factory.mktemp("edge"), "largest vocabulary", over, data)


def train_then_open(folder: Path, edge: str, over: bool, data) -> None:
    lines, options = lines_at(edge, over, data)
    path = folder / "data.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = folder / "run"
    if over:
        with pytest.raises(MakemoreError) as refused:
            makemore.train(data=str(path), out=out, **QUIET, **options)
        assert "\n" not in str(refused.value) and ("at most" in str(refused.value) or "the limit is" in str(refused.value))
        assert not out.exists()  # refused before anything was written
        return
    makemore.train(data=str(path), out=out, **QUIET, **options)
    run = makemore.load(out, device="cpu")
    assert len(run.sample(3, seed=0)) == 3
    for split in ("val", "test"):
        assert run.evaluate(split).chars > 0
    assert RunDir(out).read_metrics()
    config = json.loads((out / CONFIG).read_text(encoding="utf-8"))
    if edge == "longest item":
        assert config["model_config"]["max_len"] == MAX_ITEM_LENGTH
    elif edge == "largest vocabulary":
        assert len(config["vocab"]) == MAX_CHARS
    else:
        assert len(config["labels"]) == MAX_LABELS


def test_the_largest_config_training_can_write_fits_the_bound(tmp_path):
    # the widest characters (4 bytes in UTF-8), as many as the limits allow, the longest labels, a
    # long path: config.json is what run_config writes, and must stay under what read_config reads
    alphabet = [chr(0x10000 + i) for i in range(MAX_CHARS)]
    labels = [f"{i:0{MAX_LABEL_LENGTH}d}".replace("0", "\U0001F600") for i in range(MAX_LABELS)]
    items = ["".join(alphabet[i : i + 1000]) for i in range(0, MAX_CHARS, 1000)]
    item_labels = [labels[i % MAX_LABELS] for i in range(len(items))]
    vocab = Vocabulary.from_items(items, labels)
    data = Dataset.from_items(Path("/" + "d" * 4000), items, vocab, MAX_SEED, item_labels)
    config = run_config("mlp", ModelConfig(vocab_size=len(vocab), max_len=MAX_ITEM_LENGTH), TrainConfig(), data,
                        str(data.path), 10**9)
    written = (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode("utf-8")  # as checkpoint.write_json does
    assert len(written) <= MAX_JSON_BYTES, f"{len(written):,} bytes"


def test_a_run_with_the_most_labels_is_written_and_loaded_but_one_more_is_refused(tmp_path):
    lines = [f"ab\t{i}" for i in range(MAX_LABELS)]
    (tmp_path / "labels.txt").write_text("\n".join(lines) + "\n")
    makemore.train(data=str(tmp_path / "labels.txt"), out=tmp_path / "run", model="bigram", **QUIET)
    assert len(makemore.load(tmp_path / "run").labels) == MAX_LABELS
    (tmp_path / "more.txt").write_text("\n".join(lines + [f"ba\t{MAX_LABELS}"]) + "\n")
    with pytest.raises(MakemoreError, match=f"has {MAX_LABELS + 1:,} distinct labels; makemore takes at most {MAX_LABELS:,}"):
        makemore.train(data=str(tmp_path / "more.txt"), out=tmp_path / "more", model="bigram", **QUIET)
    assert not (tmp_path / "more").exists()
    config = json.loads((tmp_path / "run" / CONFIG).read_text())  # and loading refuses a config.json with more
    config["labels"].append("extra")
    config["model_config"]["vocab_size"] += 1
    (tmp_path / "run" / CONFIG).write_text(json.dumps(config))
    with pytest.raises(MakemoreError, match=f"at most {MAX_LABELS:,} distinct labels"):
        makemore.load(tmp_path / "run")
