"""How surprised the model is at each character of an item.

For every predicted position of an item (each of its characters, then the end boundary) this
gives the probability the model gave the character that came, its rank among all characters,
and the model's most likely alternatives there. The summed -log(probability) over the positions
is the item's NLL, the same number `score` gives.

Items go through `start`/`step` a column at a time, many items at once, so every model explains
items the way it samples them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from . import deadline
from .data import BOUNDARY, Vocabulary
from .errors import MakemoreError, too_long
from .models import CharModel


# Log-probabilities held at once when an item is explained under any label: each label's (items,
# positions, vocabulary) block, and the vocabulary has a token per label, so the whole table
# grows as the square of the labels (gigabytes for a few thousand); summed a chunk at a time.
LOG_PROBS_PER_CHUNK = 2**22


@dataclass
class Alternative:
    char: str
    end: bool  # the end-of-item boundary (shown as its symbol, which a data character may share)
    prob: float


@dataclass
class Position:
    char: str  # the character that came; the boundary's symbol at the end
    end: bool  # True for the end-of-item boundary
    prob: float  # probability the model gave it
    surprise: float  # -ln(prob), in nats: this position's share of the item's NLL
    rank: int  # 1 = the model's first choice
    top: list[Alternative]  # the model's most likely characters here, most likely first

    def to_dict(self) -> dict:
        return asdict(self)


def check_items(vocab: Vocabulary, model: CharModel, texts: list[str]) -> list[list[int]]:
    """Token ids of each text, with the same one-line errors as scoring."""
    limit = model.max_tokens()
    encoded = []
    for text in texts:
        if not text:
            raise MakemoreError(f"cannot score {text!r}: an item needs at least one character")
        ids = vocab.encode(text)
        if limit is not None and len(ids) + 1 > limit:
            raise too_long(len(ids), limit - 1)
        encoded.append(ids)
    return encoded


@torch.inference_mode()
def step_log_probs(model: CharModel, starts: list[int], targets: torch.Tensor) -> torch.Tensor:
    """(B, T, V) log-probabilities of the next token at each position, feeding each row its start
    token and then its targets, one column per `step`."""
    was_training = model.training
    model.eval()
    try:
        device = model.device
        state = model.start(len(starts))
        token = torch.tensor(starts, dtype=torch.long, device=device)
        targets = targets.to(device)
        log_probs = []
        for t in range(targets.shape[1]):
            deadline.check()
            logits, state = model.step(token, state)
            log_probs.append(torch.log_softmax(logits.float(), dim=-1))
            token = targets[:, t]
        return torch.stack(log_probs, dim=1).cpu()
    finally:
        model.train(was_training)


def explain_many(model: CharModel, vocab: Vocabulary, texts: list[str], top: int = 5,
                 labels: list[str] | None = None, prior: torch.Tensor | None = None) -> list[list[Position]]:
    """Each text's positions (surrounding whitespace stripped, as `score` does).

    A labelled model explains an item given its label (`labels`, one per text), or, with `prior`
    (each label's probability, as `Run.label_prior` gives), under any label: at each position the
    labels are weighed by how well each explains the characters so far, so the surprises sum to
    -log p(item) = -log sum over labels of p(label) p(item | label), the NLL `Run.score` gives
    without a label."""
    items = [t.strip() for t in texts]
    encoded = check_items(vocab, model, items)
    if labels is not None and len(labels) != len(items):
        raise MakemoreError(f"{len(items)} texts but {len(labels)} labels; give one label per text")
    if labels is None and vocab.labels and prior is None:
        raise MakemoreError("a labelled model explains an item given its label, or under any label given the labels' prior")
    top = max(1, min(top, len(vocab)))
    B, T = len(encoded), max(len(ids) for ids in encoded) + 1
    # targets: each item's ids then the boundary; shorter items are padded with the boundary,
    # whose later positions are never read
    targets = torch.full((B, T), BOUNDARY, dtype=torch.long)
    for r, ids in enumerate(encoded):
        targets[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    if labels is not None or not vocab.labels:
        starts = [BOUNDARY] * B if labels is None else [vocab.label_token(label) for label in labels]
        lp = step_log_probs(model, starts, targets)
    else:  # the mixture over labels, position by position, summed over a chunk of labels at a time
        L, log_prior = len(vocab.labels), prior.double().log()
        chunk = max(1, LOG_PROBS_PER_CHUNK // (B * T * len(vocab)))
        mixed = total = None  # log sums over the labels so far of p(label) p(chars before t | label) p(v | ...), and without p(v | ...)
        for first in range(0, L, chunk):
            C = min(chunk, L - first)
            starts = [vocab.first_label + j for j in range(first, first + C) for _ in range(B)]
            by_label = step_log_probs(model, starts, targets.repeat(C, 1)).double().view(C, B, T, -1)
            came = by_label.gather(3, targets[None, :, :, None].expand(C, B, T, 1)).squeeze(3)  # (C, B, T)
            weight = log_prior[first : first + C, None, None] + came.cumsum(2) - came  # log p(label) p(chars before t | label)
            part, part_total = torch.logsumexp(weight[..., None] + by_label, dim=0), torch.logsumexp(weight, dim=0)
            mixed, total = (part, part_total) if mixed is None else (torch.logaddexp(mixed, part), torch.logaddexp(total, part_total))
        lp = mixed - total[..., None]
    chosen = lp.gather(2, targets[:, :, None]).squeeze(2)  # (B, T)
    rank = (lp > chosen[:, :, None]).sum(2) + 1
    top_lp, top_ids = lp.topk(top, dim=2)
    chosen, rank, top_p, top_ids = chosen.tolist(), rank.tolist(), top_lp.exp().tolist(), top_ids.tolist()
    out = []
    for r, ids in enumerate(encoded):
        positions = []
        for t in range(len(ids) + 1):
            end = t == len(ids)
            positions.append(Position(
                char=vocab.shown(BOUNDARY) if end else items[r][t],
                end=end,
                prob=math.exp(chosen[r][t]),
                surprise=-chosen[r][t],
                rank=rank[r][t],
                top=[Alternative(vocab.shown(i), i == BOUNDARY, p) for i, p in zip(top_ids[r][t], top_p[r][t])],
            ))
        out.append(positions)
    return out


def explain(model: CharModel, vocab: Vocabulary, text: str, top: int = 5, label: str | None = None,
            prior: torch.Tensor | None = None) -> list[Position]:
    """One text's positions: its characters, then the end boundary."""
    return explain_many(model, vocab, [text], top, None if label is None else [label], prior)[0]
