"""Every model in the registry, old and new, honours the one interface: causal, starts at ln(V),
can learn, steps exactly like its full forward pass, reproduces, and survives save/load."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from makemore.data import IGNORE, Vocabulary, pack, pack_rows, windows
from makemore.evaluate import item_nll
from makemore.models import REGISTRY, CharModel, ModelConfig, build, model_options
from makemore.models.rnn import Recurrent

ITEMS = ["emma", "olivia", "ava", "isabella", "sophia", "charlotte", "mia", "amelia", "harper", "evelyn", "abigail", "emily"]
VOCAB = Vocabulary.from_items(ITEMS)
DATA = pack(VOCAB, ITEMS)
SMALL = pack(VOCAB, ITEMS[:8])
MAX_LEN = max(len(item) for item in ITEMS)
TINY = {"n_embd": 16, "n_hidden": 32, "n_layer": 2, "n_head": 2, "dropout": 0.0, "weight_drop": 0.0}
RECURRENT = [name for name, spec in REGISTRY.items() if issubclass(spec.cls, Recurrent)]


def make(name: str, seed: int = 0):
    torch.manual_seed(seed)
    config = ModelConfig.from_dict({**REGISTRY[name].config.to_dict(), **TINY, "vocab_size": len(VOCAB), "max_len": MAX_LEN})
    return build(name, config)


def loss(model, data) -> torch.Tensor:
    """The model's training loss over all of `data`, laid out as the model trains on it."""
    batches = model.batches(data, 1, torch.Generator(), torch.device("cpu"))
    return model.loss(batches.take(torch.arange(len(batches))))


def train(model, data, steps: int, lr: float = 1e-2) -> float:
    """Adam on the whole of `data`; returns the last loss. Closed-form models are fitted instead
    (`data` standing in for val too: what they choose on val, the ngram's order, is then the highest
    it tries, for a model as far from uniform as it gets)."""
    if model.closed_form:
        model.fit(data, data)
        return loss(model, data).item()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        value = loss(model, data) + model.penalty()
        opt.zero_grad()
        value.backward()
        opt.step()
    return loss(model, data).item()


def trained(name: str):
    """A model moved off its initialisation (BatchNorm running statistics included), in eval mode."""
    model = make(name)
    train(model, DATA, steps=10)
    return model.eval()


def stepwise(model, idx):
    state = model.start(idx.shape[0])
    out = []
    for t in range(idx.shape[1]):
        logits, state = model.step(idx[:, t], state)
        out.append(logits)
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("name", REGISTRY)
def test_the_registry_says_which_models_count_as_their_classes_do(name):
    # --help and the option checks read the registry's word, without importing the classes
    spec = REGISTRY[name]
    assert spec.closed_form == spec.cls.closed_form == hasattr(spec.cls, "fit") and issubclass(spec.cls, CharModel)


@pytest.mark.parametrize("name", REGISTRY)
def test_causal(name):
    model = trained(name)
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(len(VOCAB), (4, MAX_LEN + 1), generator=g)
    with torch.no_grad():
        base = model(idx)
        for t in range(idx.shape[1] - 1):
            changed = idx.clone()
            changed[:, t + 1 :] = torch.randint(len(VOCAB), changed[:, t + 1 :].shape, generator=g)
            torch.testing.assert_close(model(changed)[:, : t + 1], base[:, : t + 1], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", REGISTRY)
def test_initial_loss_is_uniform(name):
    model = make(name).train()  # the first training step sees this loss
    with torch.no_grad():
        assert abs(loss(model, DATA).item() - math.log(len(VOCAB))) < 0.1


@pytest.mark.parametrize("name", REGISTRY)
def test_overfits_small_batch(name):
    model = make(name)
    with torch.no_grad():
        first = loss(model.train(), SMALL).item()
    # bigram models cannot memorise, only reach the bigram entropy of the batch; the ngram's discounts
    # hold back probability for what it has not seen, as they are meant to (0.64 of the first loss)
    target = 0.8 * first if "bigram" in name or name == "ngram" else 0.5 * first
    assert train(model, SMALL, steps=100) < target  # all reach 0.11 of the first loss (bigram-nn 0.61)


@pytest.mark.parametrize("name", [n for n, spec in REGISTRY.items() if spec.cls.batches is CharModel.batches])
def test_padding_stays_out_of_training(name):
    """In training mode (BatchNorm on batch statistics) the real positions' logits do not depend
    on what fills the padding, nor on how many padding columns the batch has."""
    model = make(name).train()
    short = ["emma", "olivia", "ava", "mia"]
    trimmed, full = pack(VOCAB, short), pack(VOCAB, short, length=MAX_LEN + 1)
    mask = full.y != IGNORE
    noise = torch.randint(len(VOCAB), full.x.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = model(full.x, mask)[mask]
        torch.testing.assert_close(model(torch.where(mask, full.x, noise), mask)[mask], base)
        torch.testing.assert_close(model(trimmed.x, trimmed.y != IGNORE)[trimmed.y != IGNORE], base)


@pytest.mark.parametrize("name", REGISTRY)
def test_step_matches_forward(name):
    model = trained(name)
    with torch.no_grad():
        full = model(DATA.x)
        torch.testing.assert_close(stepwise(model, DATA.x), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", [name for name, spec in REGISTRY.items() if hasattr(spec.cls, "forward_rows")])
def test_rows_give_each_item_its_own_logits(name):
    """Items packed several to a row get exactly the logits they get alone, so training on rows
    is training on the items, with less padding."""
    model = trained(name)
    rows = pack_rows(DATA)
    assert rows.x.shape[0] < len(ITEMS)  # rows do hold two items
    with torch.no_grad():
        alone, packed = model(DATA.x), model.forward_rows(rows)
    for j in range(len(ITEMS)):
        n = int((DATA.y[j] != IGNORE).sum())
        torch.testing.assert_close(packed[rows.segment == j], alone[j, :n], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", REGISTRY)
def test_max_tokens_is_the_real_limit(name):
    model = make(name).eval()
    limit = model.max_tokens()
    with torch.no_grad():
        if limit is None:  # no position table: any length goes
            assert model(torch.zeros(2, 3 * MAX_LEN, dtype=torch.long)).shape[1] == 3 * MAX_LEN
        else:
            assert limit == MAX_LEN + 1 and model(torch.zeros(2, limit, dtype=torch.long)).shape[1] == limit
            with pytest.raises(ValueError):
                model(torch.zeros(2, limit + 1, dtype=torch.long))


@pytest.mark.parametrize("name", REGISTRY)
def test_sampling_with_carried_state_draws_what_the_full_model_gives(name):
    """Drawing with `step` (state carried) and drawing by re-running the whole prefix through
    `forward` pick the same characters from the same seed: the sampler's state is exact. A
    different seed draws differently, so the comparison is not empty."""
    model = trained(name)

    def draw(seed, carried: bool):
        g = torch.Generator().manual_seed(seed)
        prefix = torch.zeros(16, 1, dtype=torch.long)
        state = model.start(16)
        with torch.no_grad():
            for _ in range(MAX_LEN):
                if carried:
                    logits, state = model.step(prefix[:, -1], state)
                else:
                    logits = model(prefix)[:, -1]
                nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=g)
                prefix = torch.cat([prefix, nxt], dim=1)
        return prefix

    carried = draw(1, carried=True)
    assert torch.equal(carried, draw(1, carried=False))
    assert not torch.equal(carried, draw(2, carried=True))


@pytest.mark.parametrize("name", REGISTRY)
def test_save_load_identical_logits(name, tmp_path):
    model = trained(name)
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    torch.manual_seed(1)
    loaded = build(name, model.config)  # as a run is loaded: from its config (the ngram's records its table sizes)
    loaded.load_state_dict(load_file(tmp_path / "model.safetensors"))
    with torch.no_grad():
        assert torch.equal(loaded.eval()(DATA.x), model(DATA.x))


def test_wavenet_is_the_lectures_hierarchical_model():
    """Its prediction at every position equals lecture 5's model applied to that position's
    window of 8: FlattenConsecutive(2) -> Linear -> BatchNorm -> tanh, three times."""
    model = trained("wavenet")
    ctx, _ = windows(DATA, model.config.block_size)
    with torch.no_grad():
        x = model.wte(ctx)  # (N, 8, n_embd)
        for layer in model.layers:
            x = x.view(x.shape[0], x.shape[1] // 2, -1)  # FlattenConsecutive(2)
            x = torch.tanh(layer.bn(layer.c_fc(x)))
        lecture = model.lm_head(x.squeeze(1))
        torch.testing.assert_close(model(DATA.x)[DATA.y != IGNORE], lecture, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", RECURRENT)
def test_readable_cells_match_fused(name):
    model = trained(name)
    results = []
    for fused in (True, False):
        model.fused = fused
        model.zero_grad()
        logits = model(DATA.x)
        F.cross_entropy(logits.flatten(0, 1), DATA.y.flatten(), ignore_index=IGNORE).backward()
        with torch.no_grad():
            steps = stepwise(model, DATA.x)
        results.append((logits.detach(), steps, [p.grad.clone() for p in model.parameters()]))
    (a, a_steps, a_grads), (b, b_steps, b_grads) = results
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b_steps, a_steps, atol=1e-5, rtol=1e-5)
    for ga, gb in zip(a_grads, b_grads):
        torch.testing.assert_close(gb, ga, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", REGISTRY)
def test_item_nll_is_each_items_own_in_data_order(name):
    """Evaluation batches items shortest first (less padding); each item's NLL still comes back
    in its own place and equals the NLL of that item scored alone."""
    model = trained(name)
    batched = item_nll(model, DATA, batch_items=5)  # several batches, none aligned with the lengths
    alone = torch.cat([item_nll(model, pack(VOCAB, [item])) for item in ITEMS])
    torch.testing.assert_close(batched, alone, atol=1e-4, rtol=1e-5)
    with torch.no_grad():
        logits = model(DATA.x)
        direct = F.cross_entropy(logits.flatten(0, 1), DATA.y.flatten(), ignore_index=IGNORE, reduction="none")
    torch.testing.assert_close(batched, direct.view(DATA.y.shape).sum(1).double(), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("name", RECURRENT)
def test_weight_drop_is_one_mask_per_batch_on_the_recurrent_weights_in_training_only(name):
    config = ModelConfig.from_dict({**REGISTRY[name].config.to_dict(), **TINY, "n_layer": 1, "weight_drop": 0.5,
                                    "vocab_size": len(VOCAB), "max_len": MAX_LEN})
    torch.manual_seed(0)
    model = build(name, config)
    plain = build(name, ModelConfig.from_dict({**config.to_dict(), "weight_drop": 0.0}))
    plain.load_state_dict(model.state_dict())
    # evaluation and sampling use the whole weights
    model.eval(), plain.eval()
    assert torch.equal(model(DATA.x), plain(DATA.x))
    # training: the fused kernel and the readable cells (which apply the matrix at every time
    # step in a Python loop) see the same dropped matrix, drawn once for the batch
    model.train()
    results = []
    for fused in (True, False):
        model.fused = fused
        model.zero_grad()
        torch.manual_seed(1)
        logits = model(DATA.x)
        F.cross_entropy(logits.flatten(0, 1), DATA.y.flatten(), ignore_index=IGNORE).backward()
        results.append((logits.detach(), model.rnn.weight_hh_l0.grad.clone()))
    (a, grad_a), (b, grad_b) = results
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_b, grad_a, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(a, plain.train()(DATA.x))  # training with it differs from without
    dropped = (grad_a == 0).float().mean().item()  # a dropped entry gets no gradient through the matrix
    assert 0.4 < dropped < 0.6
    assert (model.rnn.weight_ih_l0.grad == 0).float().mean().item() < 0.05  # the input weights are whole


DROPPING = [name for name, spec in REGISTRY.items() if "dropout" in model_options(name)]


@pytest.mark.parametrize("name", DROPPING)
def test_training_without_dropout_draws_no_masks_and_stays_so_across_train_and_eval(name):
    """--dropout-from's first steps: in training mode (BatchNorm still on batch statistics), no
    dropout, nn.LSTM's between layers and weight drop included, until it is switched back on."""
    config = ModelConfig.from_dict({**REGISTRY[name].config.to_dict(), **TINY, "dropout": 0.5,
                                    "vocab_size": len(VOCAB), "max_len": MAX_LEN}
                                   | ({"weight_drop": 0.5} if "weight_drop" in model_options(name) else {}))
    torch.manual_seed(0)
    model = build(name, config)

    def twice():
        outs = []
        for seed in (1, 2):
            torch.manual_seed(seed)
            outs.append(model(DATA.x, real=DATA.y != IGNORE))
        return outs

    model.train()
    a, b = twice()
    assert not torch.allclose(a, b)  # dropout on: each forward draws its own masks
    model.set_dropout(False)
    model.eval()
    model.train()  # as the trainer does after each evaluation: dropout stays off
    assert model.training and not model.dropping
    a, b = twice()
    assert torch.equal(a, b)
    if name != "wavenet":  # no batch statistics: training without dropout is evaluation's forward
        with torch.no_grad():
            torch.testing.assert_close(a, model.eval()(DATA.x), atol=1e-6, rtol=1e-6)
        model.train()
    model.set_dropout(True)
    a, b = twice()
    assert not torch.allclose(a, b)
