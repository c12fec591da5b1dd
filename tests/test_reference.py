"""The guide's reference figures on the lectures' names.txt."""

import pytest
import torch.nn.functional as F

from makemore.data import IGNORE, Dataset, pack
from makemore.evaluate import evaluate
from makemore.models import ModelConfig, build


def test_bigram_counts_give_the_reference_losses(names_path):
    ds = Dataset.load(str(names_path))
    model = build("bigram", ModelConfig(vocab_size=len(ds.vocab), smoothing=1.0))
    model.fit(ds.packed("train"))
    got = {s: round(evaluate(model, ds.packed(s), s).nll, 4) for s in ("train", "val", "test")}
    assert got == {"train": 2.4548, "val": 2.4533, "test": 2.4584}

    everything = pack(ds.vocab, ds.items)
    model.fit(everything)
    assert round(evaluate(model, everything).nll, 4) == 2.4546


def test_evaluation_is_the_mean_over_every_predicted_character(names_path):
    ds = Dataset.load(str(names_path))
    model = build("bigram", ModelConfig(vocab_size=len(ds.vocab)))
    model.fit(ds.packed("train"))
    val = ds.packed("val")
    direct = F.cross_entropy(model(val.x).flatten(0, 1), val.y.flatten(), ignore_index=IGNORE).item()
    result = evaluate(model, val, "val")
    assert result.nll == pytest.approx(direct, abs=1e-6)
    assert result.chars == 22655 and result.items == 3203
    assert result.bits_per_char == pytest.approx(result.nll / 0.6931471805599453)


def test_bigram_nn_with_its_defaults_reaches_the_counts(names_path, tmp_path):
    import makemore

    # one evaluation at the end instead of 20 along the way: the same training, a fifth of the time
    result = makemore.train(data=str(names_path), model="bigram-nn", out=tmp_path / "run", eval_interval=500, quiet=True,
                            log=lambda m: None)
    assert result.final["train"].nll <= 2.47
