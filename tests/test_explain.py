"""explain: each position's probability, rank and alternatives, agreeing with score for every model."""

import math
from dataclasses import replace

import pytest
import torch

from makemore.data import Vocabulary, pack
from makemore.errors import MakemoreError
from makemore.evaluate import item_nll
from makemore.explain import explain, explain_many
from makemore.models import REGISTRY, build
from makemore.sample import score

VOCAB = Vocabulary(list("abcdefghijklmnopqrstuvwxyz."))  # a data "." beside the boundary's symbol
TEXTS = ["emma", "a", "olivia", "zyx", "j.r", "mmmmmmmmmmmm"]


def random_model(name: str, vocab: Vocabulary = VOCAB):
    """A model of the registry's shape with weights far from their (nearly uniform) initialisation."""
    torch.manual_seed(0)
    config = replace(REGISTRY[name].config, vocab_size=len(vocab), max_len=12)
    model = build(name, config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
        if name == "bigram":
            model.counts.copy_(torch.rand_like(model.counts) * 20)
    return model.eval()


@pytest.mark.parametrize("name", list(REGISTRY))
def test_surprise_sums_to_the_items_nll(name):
    model = random_model(name)
    explained = explain_many(model, VOCAB, TEXTS)
    for text, positions, s in zip(TEXTS, explained, score(model, VOCAB, TEXTS)):
        assert len(positions) == len(text) + 1 == s.chars
        # both sum float32 log-probabilities: they agree to float32 rounding of items of up to 65 nats
        assert sum(p.surprise for p in positions) == pytest.approx(s.nll, rel=1e-6, abs=1e-5)
        assert all(p.surprise == pytest.approx(-math.log(p.prob), abs=1e-6) for p in positions)


@pytest.mark.parametrize("name", ["bigram", "mlp", "lstm", "transformer"])
def test_alone_or_in_a_batch_the_same(name):
    model = random_model(name)
    batch = explain_many(model, VOCAB, TEXTS, top=3)
    for text, positions in zip(TEXTS, batch):
        alone = explain(model, VOCAB, text, top=3)
        assert [(p.char, p.rank) for p in alone] == [(p.char, p.rank) for p in positions]
        assert [p.prob for p in alone] == pytest.approx([p.prob for p in positions], abs=1e-6)


def test_ranks_agree_with_the_full_distribution():
    model = random_model("lstm")
    V = len(VOCAB)
    for text in TEXTS:
        positions = explain(model, VOCAB, text, top=V)
        for t, p in enumerate(positions):
            probs = [a.prob for a in p.top]
            assert len(p.top) == V and sum(probs) == pytest.approx(1.0, abs=1e-5)
            assert probs == sorted(probs, reverse=True)
            hit = next(i for i, a in enumerate(p.top) if a.char == p.char and a.end == p.end)
            assert p.top[hit].prob == pytest.approx(p.prob, rel=1e-5)
            assert p.rank == 1 + sum(q > p.prob * (1 + 1e-6) for q in probs)
            assert p.end == (t == len(text)) and p.char == (text[t] if t < len(text) else ".")


def test_the_boundary_and_a_data_dot_are_told_apart():
    positions = explain(random_model("bigram"), VOCAB, "j.r", top=len(VOCAB))
    assert [(p.char, p.end) for p in positions] == [("j", False), (".", False), ("r", False), (".", True)]
    assert sum(a.end for a in positions[0].top) == 1 and sum(a.char == "." for a in positions[0].top) == 2


@pytest.mark.parametrize("name", ["bigram", "mlp", "lstm", "transformer"])
def test_labelled_items_start_from_their_labels_token(name):
    vocab = Vocabulary(list("abcdefghijklmnopqrstuvwxyz"), ["F", "M"])
    model = random_model(name, vocab)
    texts, labels = ["emma", "liam", "ava"], ["F", "M", "F"]
    explained = explain_many(model, vocab, texts, labels=labels)
    nll = item_nll(model, pack(vocab, texts, model.max_tokens(), labels)).tolist()
    assert [sum(p.surprise for p in positions) for positions in explained] == pytest.approx(nll, rel=1e-6, abs=1e-5)
    assert sum(p.surprise for p in explain(model, vocab, "emma", label="M")) != pytest.approx(nll[0], abs=1e-3)
    with pytest.raises(MakemoreError, match="unknown label 'X'; this model knows: F, M"):
        explain(model, vocab, "emma", label="X")


@pytest.mark.parametrize("name", ["bigram", "lstm", "transformer"])
def test_without_a_label_the_labels_mix_and_the_surprises_sum_to_the_marginal_nll(name):
    vocab = Vocabulary(list("abcdefghijklmnopqrstuvwxyz"), ["F", "M", "X"])
    model, prior = random_model(name, vocab), torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    texts = ["emma", "liam", "zyx", "a"]
    by_label = torch.stack([item_nll(model, pack(vocab, texts, model.max_tokens(), [label] * len(texts)))
                            for label in vocab.labels], dim=1)  # (texts, labels)
    marginal = (-torch.logsumexp(prior.log() - by_label, dim=1)).tolist()
    explained = explain_many(model, vocab, texts, top=len(vocab), prior=prior)
    assert [sum(p.surprise for p in positions) for positions in explained] == pytest.approx(marginal, rel=1e-6, abs=1e-5)
    for positions in explained:
        assert all(sum(a.prob for a in p.top) == pytest.approx(1.0, abs=1e-6) for p in positions)
    # the first character's distribution is the prior's mix of each label's
    first = {(a.char, a.end): a.prob for a in explained[0][0].top}
    per_label = [explain(model, vocab, "emma", top=len(vocab), label=label)[0] for label in vocab.labels]
    mixed = sum(w * next(a.prob for a in p.top if a.char == "j" and not a.end) for w, p in zip(prior.tolist(), per_label))
    assert first[("j", False)] == pytest.approx(mixed, rel=1e-5)
    with pytest.raises(MakemoreError, match="under any label given the labels' prior"):
        explain(model, vocab, "emma")


def test_top_is_limited_and_clamped():
    model = random_model("mlp")
    assert [len(p.top) for p in explain(model, VOCAB, "emma", top=2)] == [2] * 5
    assert len(explain(model, VOCAB, "emma", top=1000)[0].top) == len(VOCAB)


def test_whitespace_is_stripped_as_score_does():
    model = random_model("mlp")
    assert [p.char for p in explain(model, VOCAB, "  emma \n")] == ["e", "m", "m", "a", "."]


@pytest.mark.parametrize("text, message", [
    ("", "needs at least one character"),
    ("   ", "needs at least one character"),
    ("Emma", "characters the model never saw in training ('E')"),
    ("a" * 13, "an item has 13 characters; this model takes items of at most 12"),
])
def test_bad_items_are_one_line_errors(text, message):
    with pytest.raises(MakemoreError) as e:
        explain(random_model("transformer"), VOCAB, text)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_under_any_label_the_labels_are_summed_a_chunk_at_a_time_with_the_same_result(monkeypatch):
    from makemore import explain as explain_module

    vocab = Vocabulary(list("abcdefghijklmnopqrstuvwxyz"), [f"L{i}" for i in range(7)])
    model, prior = random_model("lstm", vocab), torch.softmax(torch.randn(7, dtype=torch.float64), 0)
    texts = ["emma", "zyx", "a"]
    whole = explain_many(model, vocab, texts, top=4, prior=prior)
    rows = []
    start = model.start
    monkeypatch.setattr(model, "start", lambda batch_size: rows.append(batch_size) or start(batch_size))
    monkeypatch.setattr(explain_module, "LOG_PROBS_PER_CHUNK", 2 * 3 * 5 * len(vocab))  # two labels' rows per chunk
    chunked = explain_many(model, vocab, texts, top=4, prior=prior)
    assert rows == [6, 6, 6, 3]  # seven labels: three chunks of two labels' rows (three texts each), then one
    for a, b in zip(whole, chunked):
        assert [(p.char, p.rank, [t.char for t in p.top]) for p in a] == [(p.char, p.rank, [t.char for t in p.top]) for p in b]
        # the same float32 log-probabilities, from batches of other sizes
        assert [p.prob for p in a] == pytest.approx([p.prob for p in b], rel=1e-5)
