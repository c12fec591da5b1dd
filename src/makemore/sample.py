"""Generation and scoring, many items at once, one character per model step."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from . import deadline
from .data import BOUNDARY, Packed, Vocabulary, pack
from .errors import MakemoreError
from .evaluate import item_nll
from .models import CharModel


def next_token_probs(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1:
        # keep the smallest set of most likely tokens whose mass reaches top_p (nucleus sampling)
        sorted_p, order = probs.sort(dim=-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p >= top_p  # mass before this token already enough
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return probs


@torch.inference_mode()
def generate(
    model: CharModel,
    vocab: Vocabulary,
    n: int,
    longest: int,
    generator: torch.Generator,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    prefix: str = "",
    min_len: int = 1,
    start: torch.Tensor | None = None,
    allowed: torch.Tensor | None = None,
) -> list[str]:
    """`n` items at once, none empty; each is cut at `longest` characters if the model never ends it,
    and not ended before `min_len` characters where the model allows anything else. `start` is each
    item's first token: its label's for a labelled model (default: the boundary). `allowed` (a bool
    per token) rules the other characters out at every step; where it leaves a row nothing the
    model allows, the row ends there."""
    prefix_ids = vocab.encode(prefix)
    if len(prefix_ids) >= longest:
        raise MakemoreError(f"--prefix has {len(prefix_ids)} characters; this model makes items of at most {longest}")
    was_training = model.training
    model.eval()
    try:
        device = model.device
        state = model.start(n)
        token = torch.full((n,), BOUNDARY, dtype=torch.long, device=device) if start is None else start.to(device)
        logits, state = model.step(token, state)
        for i in prefix_ids:
            logits, state = model.step(token.fill_(i), state)
        columns = []  # each step's tokens: memory for the characters drawn, not for `longest` of them
        done = torch.zeros(n, dtype=torch.bool, device=device)
        if allowed is not None:
            allowed = allowed.to(device)
            allowed[BOUNDARY] = True
        for t in range(longest - len(prefix_ids)):
            deadline.check()
            if allowed is not None:
                logits = logits.masked_fill(~allowed, float("-inf"))
                stuck = ~torch.isfinite(logits).any(-1)
                logits[stuck, BOUNDARY] = 0.0
            if len(prefix_ids) + t < max(1, min_len):
                # the data has no empty item, so an item never ends before its first character, nor
                # before min_len: the boundary is ruled out there (the other characters keep their
                # relative odds), except in a row where the model allows nothing else
                logits = logits.clone()
                others = torch.isfinite(logits)
                others[:, BOUNDARY] = False
                logits[others.any(-1), BOUNDARY] = float("-inf")
            if vocab.labels:  # label tokens only ever start an item: never drawn (they never were targets)
                logits = logits.clone()
                logits[:, vocab.first_label :] = float("-inf")
            probs = next_token_probs(logits, temperature, top_k, top_p)
            # finished rows only repeat the boundary, whatever the model says after the end
            probs = probs.masked_fill(done[:, None], 0.0)
            probs[:, BOUNDARY] = probs[:, BOUNDARY].masked_fill(done, 1.0)
            if not bool(torch.isfinite(probs).all()):
                raise MakemoreError("the model gives probabilities that are not finite numbers (were its weights damaged, "
                                    "or did training diverge?); retrain it, with a lower --lr if it diverged")
            token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            token = token.masked_fill(done, BOUNDARY)
            columns.append(token)
            done |= token == BOUNDARY
            if bool(done.all()):
                break
            logits, state = model.step(token, state)
    finally:
        model.train(was_training)
    out = torch.stack(columns, 1) if columns else torch.empty((n, 0), dtype=torch.long)
    return [prefix + vocab.decode(row) for row in out.tolist()]


@dataclass
class Score:
    text: str
    nll: float  # total nats over the characters and the end boundary
    nll_per_char: float
    chars: int  # predicted characters: len(text) + 1 for the end boundary

    def to_dict(self) -> dict:
        return asdict(self)


def stripped(texts: list[str]) -> list[str]:
    """The items as scored: surrounding whitespace stripped, none empty."""
    items = [t.strip() for t in texts]
    for text, item in zip(texts, items):
        if not item:
            raise MakemoreError(f"cannot score {text!r}: an item needs at least one character")
    return items


def score(model: CharModel, vocab: Vocabulary, texts: list[str], label: str | None = None) -> list[Score]:
    """Each text's NLL; with `label`, given that label (a labelled model)."""
    items = stripped(texts)
    packed = pack(vocab, items, model.max_tokens(), None if label is None else [label] * len(items))
    totals = item_nll(model, packed).tolist()
    return [Score(t, nll, nll / (len(t) + 1), len(t) + 1) for t, nll in zip(items, totals)]


def nll_by_label(model: CharModel, vocab: Vocabulary, texts: list[str]) -> torch.Tensor:
    """(texts, labels) float64: each text's NLL given each of a labelled model's labels, in the
    order of `vocab.labels`. The texts are encoded once and every (label, text) row goes through
    the model in the same batches (item_nll), not one pass per label."""
    items = stripped(texts)
    packed = pack(vocab, items, model.max_tokens())
    L, B = len(vocab.labels), len(items)
    x, y = packed.x.repeat(L, 1), packed.y.repeat(L, 1)  # label-major: row l * B + b
    x[:, 0] = vocab.first_label + torch.arange(L).repeat_interleave(B)
    return item_nll(model, Packed(x, y)).view(L, B).T
