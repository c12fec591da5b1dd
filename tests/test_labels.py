"""Labels: item<TAB>label data, one start token per label, p(item | label) for every model,
sampling and scoring with or without a label, per-label evaluation, classification."""

import hashlib
import json
import math

import pytest
import torch

import makemore
from makemore.data import BOUNDARY, IGNORE, Dataset, Vocabulary, pack, split_labels
from makemore.errors import DataError, MakemoreError
from makemore.models import REGISTRY, ModelConfig, build, model_options

QUIET = {"quiet": True, "log": lambda msg: None}


def labelled_file(tmp_path, n_a=30, n_b=10):
    """Label A items all start with 'a', label B items with 'b': the label decides the first letter."""
    words_a = ["ab", "abb", "aab", "abab", "aabb", "ba"]  # 'ba' is A's too, but never first... see below
    lines = [f"a{w[1:]}{i % 3 * 'b'}\tA" for i, w in enumerate(words_a * 5)][:n_a]
    lines += [f"b{'a' * (1 + i % 3)}\tB" for i in range(n_b)]
    path = tmp_path / "ab.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_file_is_labelled_when_every_line_has_a_tab():
    assert split_labels(["emma\tF", "liam\tM"]) == (["emma", "liam"], ["F", "M"])
    assert split_labels(["emma", "liam"]) == (["emma", "liam"], None)
    assert split_labels(["a\tb\tX", "c\tY"]) == (["a\tb", "c"], ["X", "Y"])  # split at the last TAB
    with pytest.raises(DataError, match="empty label"):
        split_labels(["emma\tF", "liam\t "])


def test_label_tokens_follow_the_characters_and_start_items():
    vocab = Vocabulary.from_items(["ab", "ba"], ["Y", "X", "Y"])
    assert vocab.labels == ["X", "Y"] and len(vocab) == 1 + 2 + 2 and vocab.first_label == 3
    assert vocab.label_token("X") == 3 and vocab.shown(4) == "<Y>" and vocab.decode([4, 1, 2, BOUNDARY]) == "ab"
    with pytest.raises(DataError, match="unknown label 'Z'; this model knows: X, Y"):
        vocab.label_token("Z")
    with pytest.raises(DataError, match="trained without labels"):
        Vocabulary(["a"]).label_token("X")
    plain, labelled = pack(vocab, ["ab", "b"]), pack(vocab, ["ab", "b"], labels=["Y", "X"])
    assert labelled.x[:, 0].tolist() == [4, 3] and torch.equal(labelled.x[:, 1:], plain.x[:, 1:])
    assert torch.equal(labelled.y, plain.y)  # the same characters predicted; only the context differs


def test_labelled_data_splits_like_its_items_and_fingerprints_its_lines(tmp_path):
    path = labelled_file(tmp_path)
    data = Dataset.load(str(path))
    items_only = tmp_path / "items.txt"
    items_only.write_text("\n".join(data.items) + "\n")
    plain = Dataset.load(str(items_only))
    assert data.splits == plain.splits and data.fingerprint != plain.fingerprint
    lines = path.read_text().splitlines()
    assert data.fingerprint == hashlib.sha256("\n".join(lines).encode()).hexdigest()
    assert all(f"{i}\t{l}" in lines for s in data.splits for i, l in zip(data.splits[s], data.split_labels[s]))
    assert data.label_counts("train") == {"A": data.split_labels["train"].count("A"), "B": data.split_labels["train"].count("B")}


def test_the_builtin_labelled_names():
    data = Dataset.load("names-sex")
    assert data.vocab.labels == ["F", "M"] and len(data.items) == 32469
    assert data.items[:3] == ["emma", "liam", "olivia"] and data.labels[:3] == ["F", "M", "F"]
    both = {item for item, label in zip(data.items, data.labels) if label == "F"} & {
        item for item, label in zip(data.items, data.labels) if label == "M"}
    assert "taylor" in both and data.items.count("taylor") == 2  # a name given to both sexes: once per sex


@pytest.fixture
def bigram_run(tmp_path):
    """Counted without smoothing, so p(first letter | label) is exactly the data's."""
    return makemore.load(makemore.train(data=str(labelled_file(tmp_path)), model="bigram", out=tmp_path / "run",
                                        smoothing=0.0, **QUIET).run_dir)


def test_sampling_with_a_label_draws_that_labels_items(bigram_run):
    assert all(item.startswith("a") for item in bigram_run.sample(200, seed=0, label="A"))
    assert all(item.startswith("b") for item in bigram_run.sample(200, seed=0, label="B"))


def test_sampling_without_a_label_draws_the_label_from_its_training_frequency(bigram_run):
    counts = bigram_run.config["data"]["label_counts"]
    share_a = counts["A"] / (counts["A"] + counts["B"])
    items = bigram_run.sample(4000, seed=0)
    assert abs(sum(item.startswith("a") for item in items) / 4000 - share_a) < 0.03


def test_scores_given_a_label_without_one_and_the_posterior_agree_with_bayes(bigram_run):
    texts = ["ab", "ba", "abb"]
    given = {label: [s.nll for s in bigram_run.score(texts, label=label)] for label in ("A", "B")}
    prior = bigram_run.label_prior().tolist()
    marginal = [s.nll for s in bigram_run.score(texts)]
    posterior = bigram_run.classify(texts)
    for i in range(len(texts)):
        p = [prior[j] * math.exp(-given[label][i]) for j, label in enumerate(("A", "B"))]
        assert marginal[i] == pytest.approx(-math.log(sum(p)), rel=1e-9)
        assert posterior[i]["A"] == pytest.approx(p[0] / sum(p), rel=1e-9) and sum(posterior[i].values()) == pytest.approx(1.0)
    assert posterior[0]["A"] == 1.0 and posterior[1]["B"] == 1.0  # no B item starts with 'a', no A item with 'b'


def test_evaluation_reports_each_labels_nll(bigram_run):
    result = bigram_run.evaluate("train")
    parts = result.by_label
    assert set(parts) == {"A", "B"} and sum(p.items for p in parts.values()) == result.items
    assert sum(p.chars for p in parts.values()) == result.chars
    assert sum(p.nll * p.chars for p in parts.values()) == pytest.approx(result.nll * result.chars, rel=1e-9)


def test_label_mistakes_are_one_line(bigram_run, tmp_path):
    with pytest.raises(MakemoreError, match="unknown label 'C'; this model knows: A, B"):
        bigram_run.sample(3, label="C")
    plain = tmp_path / "plain.txt"
    plain.write_text("\n".join(["ab", "ba", "abb", "bab", "aab", "bba", "ab", "ba", "aa", "bb", "abab"]) + "\n")
    run = makemore.load(makemore.train(data=str(plain), model="bigram", out=tmp_path / "plain", **QUIET).run_dir)
    with pytest.raises(MakemoreError, match="trained without labels"):
        run.sample(3, label="A")
    with pytest.raises(MakemoreError, match="trained without labels, so there is nothing to classify"):
        run.classify(["ab"])


@pytest.mark.parametrize("name", REGISTRY)
def test_every_model_learns_p_item_given_label_with_no_special_case(name, tmp_path):
    """The label is only the first token of the input, so any model that reads its left context
    learns it: after a short training, the first letter follows the label."""
    data = Dataset.load(str(labelled_file(tmp_path, n_a=20, n_b=20)))
    torch.manual_seed(0)
    tiny = {"n_embd": 16, "n_hidden": 32, "n_layer": 1, "n_head": 2, "dropout": 0.0, "smoothing": 0.01, "l2": 0.0}
    options = {k: v for k, v in tiny.items() if k in model_options(name)}
    model = build(name, ModelConfig.from_dict({**REGISTRY[name].config.to_dict(), **options, "vocab_size": len(data.vocab),
                                               "max_len": data.max_len}))
    train = data.packed("train")
    if model.closed_form:
        model.fit(train, data.packed("val"))
    else:
        opt = torch.optim.Adam(model.parameters(), lr=3e-2)
        batches = model.batches(train, len(train), torch.Generator().manual_seed(0), torch.device("cpu"))
        whole = batches.take(torch.arange(len(batches)))
        for _ in range(100):
            loss = model.loss(whole)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        starts = torch.tensor([data.vocab.label_token("A"), data.vocab.label_token("B")])
        logits, _ = model.step(starts, model.start(2))
        probs = torch.softmax(logits, -1)
    a, b = data.vocab.encode("a")[0], data.vocab.encode("b")[0]
    assert probs[0, a] > 0.8 and probs[1, b] > 0.8, probs
    assert IGNORE not in data.packed("train").x  # label tokens are inputs, never padding or targets


def test_the_command_line_speaks_labels(bigram_run, run_cli):
    run = bigram_run.path
    status, out, _ = run_cli("sample", run, "-n", "20", "--label", "B", "--seed", "1")
    assert status == 0 and all(line.startswith("b") for line in out.splitlines())
    status, out, _ = run_cli("classify", run, "ab", "ba", "--json")
    rows = json.loads(out)
    assert status == 0 and rows[0]["text"] == "ab" and rows[0]["posterior"] == {"A": 1.0, "B": 0.0}
    status, out, _ = run_cli("classify", run, "ab")
    assert out.strip() == "ab\tA 1.000  B 0.000"
    status, out, _ = run_cli("eval", run, "--split", "train")
    assert status == 0 and "label A: nll" in out and "label B: nll" in out
    status, out, _ = run_cli("score", run, "ab", "--label", "A", "--json")
    assert status == 0 and json.loads(out)[0]["nll"] == pytest.approx(bigram_run.score(["ab"], label="A")[0].nll)
    status, _, err = run_cli("sample", run, "--label", "Q")
    assert status == 2 and err.strip() == "makemore: error: unknown label 'Q'; this model knows: A, B"


def test_nothing_to_score_or_classify_gives_nothing(bigram_run):
    assert bigram_run.score([]) == [] and bigram_run.score([], label="A") == [] and bigram_run.classify([]) == []


def many_labels_model(name: str, labels: int = 40):
    """A model of the registry's shape over a vocabulary with `labels` label tokens, weights far from uniform."""
    vocab = Vocabulary(list("abcdefghijklmnopqrstuvwxyz"), [f"L{i}" for i in range(labels)])
    torch.manual_seed(0)
    model = build(name, ModelConfig.from_dict({**REGISTRY[name].config.to_dict(), "vocab_size": len(vocab), "max_len": 12}))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
        if name == "bigram":
            model.counts.copy_(torch.rand_like(model.counts) * 20)
    return model.eval(), vocab


@pytest.mark.parametrize("name", ["bigram", "mlp", "lstm", "transformer"])
def test_every_labels_nll_comes_from_one_batched_pass_and_agrees_with_each_label_alone(name, monkeypatch):
    from makemore.sample import nll_by_label, score

    model, vocab = many_labels_model(name)
    texts = ["emma", " zyx ", "a", "olivia"]
    alone = torch.tensor([[s.nll for s in score(model, vocab, texts, label)] for label in vocab.labels], dtype=torch.float64).T
    calls = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **k: calls.append(a[0].shape) or forward(*a, **k))
    table = nll_by_label(model, vocab, texts)
    assert table.shape == (4, 40) and torch.allclose(table, alone, rtol=1e-6, atol=1e-5)
    assert len(calls) == 1 and calls[0][0] == 4 * 40  # every (text, label) row in one forward, not one per label


def test_batches_of_item_nll_stay_under_the_logits_bound_and_give_the_same_nll(monkeypatch):
    from makemore import evaluate
    from makemore.sample import nll_by_label

    model, vocab = many_labels_model("lstm")
    texts = ["emma", "zyx", "a", "olivia", "mmmmmmmmmmmm"]
    whole = nll_by_label(model, vocab, texts)
    shapes = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **k: shapes.append(a[0].shape) or forward(*a, **k))
    monkeypatch.setattr(evaluate, "EVAL_LOGITS", 20 * 13 * len(vocab))  # 20 rows of the longest item
    assert torch.allclose(nll_by_label(model, vocab, texts), whole, rtol=1e-6, atol=1e-5)
    assert sum(rows for rows, _ in shapes) == 5 * 40
    assert all(rows * T * len(vocab) <= evaluate.EVAL_LOGITS for rows, T in shapes)
    # each batch as large as the bound allows (shortest items first): one more item would break it
    lengths = sorted(len(t) + 1 for t in texts for _ in range(40))
    start = 0
    for rows, T in shapes:
        start += rows
        assert T == lengths[start - 1] and (start == len(lengths) or (rows + 1) * lengths[start] * len(vocab) > evaluate.EVAL_LOGITS)
    assert len(shapes) == 6


def test_classify_with_many_labels_is_bayes_over_the_batched_table(tmp_path):
    lines = [f"{w}\tL{i % 30}" for i, w in enumerate(["ab", "abb", "ba", "bab", "aab", "bba"] * 20)]
    (tmp_path / "many.txt").write_text("\n".join(lines) + "\n")
    run = makemore.load(makemore.train(data=str(tmp_path / "many.txt"), model="bigram", out=tmp_path / "run", **QUIET).run_dir)
    assert len(run.labels) == 30
    texts = ["ab", "bba"]
    given = torch.tensor([[s.nll for s in run.score(texts, label)] for label in run.labels], dtype=torch.float64).T
    joint = run.label_prior().log() - given
    posterior = run.classify(texts)
    for i in range(2):
        assert [posterior[i][label] for label in run.labels] == pytest.approx(torch.softmax(joint[i], 0).tolist(), rel=1e-9)
    assert [s.nll for s in run.score(texts)] == pytest.approx((-torch.logsumexp(joint, 1)).tolist(), rel=1e-9)
