"""The sampling filters and the learning-rate schedule, as numbers."""

import math

import pytest
import torch

from makemore.config import TrainConfig
from makemore.sample import next_token_probs
from makemore.trainer import learning_rate

P = torch.tensor([[0.5, 0.25, 0.15, 0.1]])
LOGITS = P.log()


def normalised(probs: torch.Tensor) -> list[float]:
    return (probs / probs.sum(-1, keepdim=True))[0].tolist()


def test_plain_sampling_is_the_softmax():
    assert normalised(next_token_probs(LOGITS, 1.0, None, None)) == pytest.approx([0.5, 0.25, 0.15, 0.1])


def test_temperature_sharpens_and_flattens():
    # p ** (1 / T), renormalised
    for t in (0.5, 2.0):
        expected = P[0] ** (1 / t)
        assert normalised(next_token_probs(LOGITS, t, None, None)) == pytest.approx((expected / expected.sum()).tolist())


def test_top_k_keeps_the_k_most_likely():
    assert normalised(next_token_probs(LOGITS, 1.0, 2, None)) == pytest.approx([2 / 3, 1 / 3, 0, 0])
    assert normalised(next_token_probs(LOGITS, 1.0, 1, None)) == [1.0, 0.0, 0.0, 0.0]
    assert normalised(next_token_probs(LOGITS, 1.0, 10, None)) == pytest.approx([0.5, 0.25, 0.15, 0.1])  # k >= V: all
    tie = torch.tensor([[1.0, 1.0, 0.0]])
    assert normalised(next_token_probs(tie, 1.0, 1, None)) == [0.5, 0.5, 0.0]  # ties at the k-th are kept


def test_top_p_keeps_the_smallest_set_reaching_p():
    # cumulative mass before each token (most likely first): 0, 0.5, 0.75, 0.9
    assert normalised(next_token_probs(LOGITS, 1.0, None, 0.7)) == pytest.approx([2 / 3, 1 / 3, 0, 0])
    assert normalised(next_token_probs(LOGITS, 1.0, None, 0.5)) == pytest.approx([1, 0, 0, 0])
    assert normalised(next_token_probs(LOGITS, 1.0, None, 0.76)) == pytest.approx([0.5 / 0.9, 0.25 / 0.9, 0.15 / 0.9, 0])
    assert normalised(next_token_probs(LOGITS, 1.0, None, 1.0)) == pytest.approx([0.5, 0.25, 0.15, 0.1])


def test_top_p_works_on_each_row_in_its_own_order():
    logits = torch.stack([LOGITS[0], LOGITS[0].flip(0)])
    probs = next_token_probs(logits, 1.0, None, 0.5)
    assert (probs > 0).tolist() == [[True, False, False, False], [False, False, False, True]]


def test_warm_up_is_linear_then_cosine_decays_to_a_tenth():
    tc = TrainConfig(lr=1.0, lr_schedule="cosine", warmup_steps=10, max_steps=100)
    assert [learning_rate(tc, s, s / 100) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert learning_rate(tc, 10, 0.0) == pytest.approx(1.0)
    assert learning_rate(tc, 50, 0.5) == pytest.approx(0.1 + 0.9 * 0.5)
    assert learning_rate(tc, 75, 0.75) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(0.75 * math.pi)))
    assert learning_rate(tc, 100, 1.0) == pytest.approx(0.1)
    assert learning_rate(tc, 100, 3.0) == pytest.approx(0.1)  # past the end (a time budget overrun): stays at the floor


def test_step_and_constant_schedules():
    step = TrainConfig(lr=0.1, lr_schedule="step")
    assert [learning_rate(step, 0, p) for p in (0.0, 0.49, 0.5, 0.9)] == pytest.approx([0.1, 0.1, 0.01, 0.01])
    constant = TrainConfig(lr=0.3, lr_schedule="constant")
    assert {learning_rate(constant, s, s / 10) for s in range(10)} == {0.3}
