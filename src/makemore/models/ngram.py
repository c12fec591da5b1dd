"""Kneser-Ney character n-grams: counts, discounted and interpolated, fitted in closed form.

Interpolated modified Kneser-Ney smoothing (Chen & Goodman 1998, "An empirical study of smoothing
techniques for language modeling", section 3). The next token w after the history h of the n-1
tokens before it (fewer near an item's start: its tokens so far, the start token first) has probability

    P_k(w | h) = (a(hw) - D_k(a(hw))) / a(h.)  +  gamma(h) P_{k-1}(w | h'),    h' = h less its first token
    gamma(h)   = (D_k1 N1(h.) + D_k2 N2(h.) + D_k3+ N3+(h.)) / a(h.)

at order k = n, down to P_0(w) = 1/V; a(h.) is the sum of a(hw) over w, and N_i(h.) the number of
tokens w with a(hw) = i (N3+: at least 3). A history that training never saw leaves its order out:
P_k(w | h) = P_{k-1}(w | h'). At the highest order a(hw) is the count of hw; below it, hw's
continuation count, the number of distinct tokens seen just before it (Kneser & Ney 1995): how many
contexts a character follows, not how often. An n-gram whose first token is a start token (the
boundary or a label's token, which nothing precedes) keeps its count instead, as KenLM's "adjusted
counts" do. Each order's three discounts come from its count-of-counts n1..n4 (Chen & Goodman, eq. 26):

    Y = n1 / (n1 + 2 n2),  D1 = 1 - 2Y n2/n1,  D2 = 2 - 3Y n3/n2,  D3+ = 3 - 4Y n4/n3

and one the data cannot estimate (an n_i of 0, or a value outside (0, i): typically n_{i+1} = 0 in a few
items) is FALLBACK's.

The tables hold only what the data holds, never V^n numbers. Each context seen (1 to n-1 tokens
of history) has an id, 0 for the empty one; a context of j tokens is keyed by its last j-1 tokens'
id and the one token before them, parent * V + token. Ids are given a history length at a time, each
length's keys sorted, so all the keys are sorted and a context's id is its key's index + 1: one
searchsorted per history length. An n-gram (context, w) is keyed context * V + w, sorted alike, so
each context's n-grams are one run of the table, and its probabilities come out of it by a scatter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import count

import torch
import torch.nn.functional as F

from ..config import MAX_ORDER
from ..data import BOUNDARY, IGNORE, Packed
from ..errors import MakemoreError
from .base import CharModel, ModelConfig

FALLBACK = (0.5, 1.0, 1.5)  # D1, D2, D3+ where the count-of-counts do not give one (KenLM falls back to these too)
PATIENCE = 2  # orders tried past the best by val NLL before it is chosen


class NGram(CharModel):
    """Interpolated modified Kneser-Ney over characters, of order `order` (chosen on val when not set)."""

    closed_form = True

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        for name in ("ngram_contexts", "ngrams"):
            size = getattr(config, name)
            if type(size) is not int or size < 0:
                raise MakemoreError(f"{name} is {size!r}, not a table size (a whole number, at least 0)")
        self.order = config.order or 1  # not fitted yet, and no order given: no context, P_0 alone
        # an unfitted model has only the empty context, of weight 1 on the uniform P_0 and no n-grams
        self.register_buffer("context_keys", torch.zeros(config.ngram_contexts, dtype=torch.long))
        self.register_buffer("gamma", torch.ones(config.ngram_contexts + 1))
        self.register_buffer("ngram_keys", torch.zeros(config.ngrams, dtype=torch.long))
        self.register_buffer("discounted", torch.zeros(config.ngrams))

    def num_params(self) -> int:
        """The numbers fitted to the data: a weight per context seen and a discounted frequency per n-gram."""
        return self.config.ngram_contexts + self.config.ngrams

    def shape_notes(self) -> dict[str, str]:
        note = "tables of another fit: their sizes are config.json's ngram_contexts and ngrams"
        return {name: note for name in ("context_keys", "gamma", "ngram_keys", "discounted")}

    # ---- fitting -----------------------------------------------------------------------------------

    @torch.no_grad()
    def fit(self, train: Packed, val: Packed | None = None) -> dict | None:
        """Count the training split's n-grams and fill the tables. Without an order set, the order is
        the one of lowest val NLL among 1, 2, ... (counting stops PATIENCE orders past the best), and
        what was tried is returned, for config.json's "choice"; with one, None."""
        n, V = self.config.order, self.config.vocab_size
        if n is None and val is None:
            raise MakemoreError("ngram chooses its order by the val NLL: pass fit a val split, or set order")
        counted, val_nll = [], {}
        scorer = None if n is not None else ValScorer(val, V)
        for order in count_orders(train, V):
            counted.append(order)
            if n is not None:
                if len(counted) == n:
                    break
                continue
            val_nll[len(counted)] = scorer.add(counted)
            best = min(val_nll, key=val_nll.get)
            if len(counted) - best >= PATIENCE or len(counted) == MAX_ORDER:
                break
        if n is None:
            n = best
        # an order past the longest item's holds nothing: the model is the longest there is, all its
        # orders on continuation counts, as the lower orders of a higher-order model
        self.set_tables(counted, min(n, len(counted)))
        self.order = n
        self.config = replace(self.config, order=n)
        if not val_nll:
            return None
        return {"order": {"by": "val NLL", "tried": {str(k): round(v, 6) for k, v in val_nll.items()}, "chosen": n}}

    def set_tables(self, counted: list["Order"], n: int) -> None:
        """The model of order n from the orders counted: continuation counts below n, counts at n."""
        V = self.config.vocab_size
        smoothed = [o.smoothed(o.adjusted, V) for o in counted[: n - 1]] + [counted[n - 1].smoothed(counted[n - 1].counts, V)]
        tables = {
            "context_keys": torch.cat([o.contexts for o in counted[:n]]),  # order k's have k-1 tokens: none for k = 1
            "gamma": torch.cat([gamma for gamma, _ in smoothed]),
            "ngram_keys": torch.cat([o.keys for o in counted[:n]]),
            "discounted": torch.cat([d for _, d in smoothed]),
        }
        for name, table in tables.items():  # each as its buffer was: dtype (float32, or float64 after .double()), device
            setattr(self, name, table.to(getattr(self, name)))
        self.config = replace(self.config, ngram_contexts=len(tables["context_keys"]), ngrams=len(tables["ngram_keys"]))

    # ---- predicting --------------------------------------------------------------------------------

    def probs(self, history: torch.Tensor) -> torch.Tensor:
        """(R, order-1) histories, the latest token last -> (R, V) next-token probabilities: the
        recursion unrolled, P = prod_j gamma_j / V + sum_j (prod_{i>j} gamma_i) discounted_j, over the
        contexts j seen (the empty one's densely, the others' n-grams in one scatter)."""
        R, V = history.shape[0], self.config.vocab_size
        nodes = self.contexts(history)  # (R, L): each row's context of 0, 1, ... tokens, -1 once never seen
        gamma = torch.where(nodes >= 0, self.gamma[nodes.clamp(min=0)], 1.0)
        after = torch.cumprod(gamma.flip(1), 1).flip(1)  # after[:, j]: the product of gamma_j and the longer ones'
        weight = torch.cat([after[:, 1:], after.new_ones(R, 1)], 1)  # of the longer contexts' alone
        empty = self.ngram_keys < V  # the empty context's n-grams: the first run of the table
        root = torch.zeros(V, dtype=self.discounted.dtype, device=history.device)
        root[self.ngram_keys[empty]] = self.discounted[empty]
        p = after[:, :1] / V + weight[:, :1] * root
        rows, level = (nodes[:, 1:] >= 0).nonzero(as_tuple=True)  # row by row, shorter contexts first
        node, w = nodes[rows, level + 1], weight[rows, level + 1]
        start = torch.searchsorted(self.ngram_keys, node * V)
        runs = torch.searchsorted(self.ngram_keys, node * V + V) - start  # each context's n-grams
        which = torch.repeat_interleave(torch.arange(len(node), device=p.device), runs)
        entry = start[which] + torch.arange(len(which), device=p.device) - (torch.cumsum(runs, 0) - runs)[which]
        p.view(-1).index_add_(0, rows[which] * V + self.ngram_keys[entry] % V, w[which] * self.discounted[entry])
        return p

    def contexts(self, history: torch.Tensor) -> torch.Tensor:
        """(R, L) the id of each row's context of 0, 1, ..., L-1 tokens, extended a token to the left at a
        time until one was never seen (-1 from there on); L is at most the order, less where no row's
        context was seen as long."""
        R, V, keys = history.shape[0], self.config.vocab_size, self.context_keys
        columns = [torch.zeros(R, dtype=torch.long, device=history.device)]  # the empty context, id 0
        seen = torch.ones(R, dtype=torch.bool, device=history.device)
        for j in range(1, self.order if len(keys) else 1):
            key = columns[-1] * V + history[:, -j]
            at = torch.searchsorted(keys, key).clamp(max=len(keys) - 1)
            seen &= keys[at] == key
            if not seen.any():
                break
            columns.append(torch.where(seen, at + 1, -1))
        return torch.stack(columns, 1)

    def forward(self, idx, real=None):
        B, T = idx.shape
        h = self.order - 1
        if h == 0:
            history = idx.new_zeros(B * T, 0)
        else:
            history = F.pad(idx, (h - 1, 0), value=BOUNDARY).unfold(1, h, 1).reshape(B * T, h)  # tokens t-h+1..t
        return self.probs(history).log().view(B, T, -1)

    def start(self, batch_size):
        return torch.full((batch_size, self.order - 1), BOUNDARY, dtype=torch.long, device=self.device)

    def step(self, idx, state):
        window = torch.cat([state, idx[:, None]], dim=1)[:, 1:]  # roll the window by one (none for order 1)
        return self.probs(window).log(), window


# ---- counting --------------------------------------------------------------------------------------


@dataclass
class Order:
    """The n-grams of one order k (k-1 tokens of context, then the next token), counted."""

    contexts: torch.Tensor  # the keys of its contexts of k-1 tokens, sorted (none for k = 1: the empty context)
    first: int  # the id of its first context
    keys: torch.Tensor  # its n-grams' keys, context id * V + token, sorted
    counts: torch.Tensor  # how often each occurs (float64)
    starts: torch.Tensor  # whether each begins with its item's start token, which nothing precedes (never for k = 1)
    adjusted: torch.Tensor | None = None  # continuation counts (counts where `starts`), once order k+1 is counted

    def smoothed(self, a: torch.Tensor, V: int) -> tuple[torch.Tensor, torch.Tensor]:
        """With counts `a`: each context's gamma and each n-gram's discounted frequency, float64."""
        d = discounts(a)[(a.clamp(1, 3) - 1).long()]
        context = self.keys // V - self.first
        size = len(self.contexts) if self.first else 1  # order 1 has the empty context alone
        total = torch.bincount(context, weights=a, minlength=size)
        return torch.bincount(context, weights=d, minlength=size) / total, (a - d) / total[context]


def discounts(a: torch.Tensor) -> torch.Tensor:
    """D1, D2, D3+ from the count-of-counts of `a` (Chen & Goodman's eq. 26), FALLBACK's where they say nothing."""
    n = [int((a == i).sum()) for i in range(1, 5)]
    Y = n[0] / (n[0] + 2 * n[1]) if n[0] + 2 * n[1] else None
    out = []
    for i in (1, 2, 3):
        D = i - (i + 1) * Y * n[i] / n[i - 1] if Y is not None and n[i - 1] else None
        out.append(D if D is not None and 0 < D < i else FALLBACK[i - 1])  # D = i: count-i n-grams would get nothing
    return torch.tensor(out, dtype=torch.float64, device=a.device)


def count_orders(train: Packed, V: int):
    """Each order's n-grams, k = 1, 2, ..., counted over the whole split at once, until an order with
    none (no item is that long); order k's continuation counts are set by the time order k+1 is given.
    An n-gram never reaches back past an item's start token: a target t tokens into its item has
    n-grams of orders 1 to t+2, the longest beginning with the start token. (Padding the history with
    boundaries instead would count each start again at every order, as if nothing were known there but
    the start: the lower orders then repeat the start's counts instead of smoothing them.)"""
    rows, cols = (train.y != IGNORE).nonzero(as_tuple=True)  # x[r, c] is the token just before y[r, c]
    y = train.y[rows, cols]
    node = torch.zeros_like(y)  # each position's context id: the empty context
    next_id, below = 1, None
    for k in count(1):
        contexts, first = y[:0], 0
        if k > 1:
            live = cols >= k - 2  # the targets with k-1 tokens of their item before them
            rows, cols, y, node = rows[live], cols[live], y[live], node[live]
            token = train.x[rows, cols - (k - 2)]
            contexts, inverse = torch.unique(node * V + token, return_inverse=True)
            node, first, next_id = next_id + inverse, next_id, next_id + len(contexts)
        keys, inverse, counts = torch.unique(node * V + y, return_inverse=True, return_counts=True)
        starts = torch.zeros(len(keys), dtype=torch.bool, device=y.device)
        if k > 1:
            starts[inverse] = cols == k - 2  # every occurrence of an n-gram begins alike
        order = Order(contexts, first, keys, counts.double(), starts)
        if below is not None:  # order k-1's continuation counts: its n-grams' distinct left extensions here
            lower, lower_inverse = below
            suffix = torch.empty_like(keys)
            suffix[inverse] = lower_inverse[live]
            extensions = torch.bincount(suffix, minlength=len(lower.keys)).double()
            lower.adjusted = torch.where(lower.starts, lower.counts, extensions)
        below = (order, inverse)
        yield order
        if not len(y):
            return


def back(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, j: int) -> torch.Tensor:
    """The token j places before each target (rows, cols) of a packed split; the boundary before the
    item's start token (a key no context has, as the model's padded windows give)."""
    col = cols - (j - 1)  # x[r, c] is the token just before y[r, c]
    return torch.where(col >= 0, x[rows, col.clamp(min=0)], BOUNDARY)


class ValScorer:
    """The val NLL of each order's model as orders are counted, from the probability of each target
    alone (no full distributions): one lookup per order and position."""

    def __init__(self, val: Packed, V: int):
        self.V = V
        self.rows, self.cols = (val.y != IGNORE).nonzero(as_tuple=True)
        self.x, self.y = val.x, val.y[self.rows, self.cols]
        self.node = torch.zeros_like(self.y)  # each position's context id; -1 once a context was never seen
        self.lookups = []  # each order's (context index, n-gram index) per position, -1 where not seen
        self.lower = torch.full(self.y.shape, 1.0 / V, dtype=torch.float64, device=self.y.device)  # orders below

    def add(self, counted: list[Order]) -> float:
        """The val NLL of the model of order len(counted)."""
        order, k, V = counted[-1], len(counted), self.V
        if k > 1:
            found = self.find(order.contexts, self.node * V + back(self.x, self.rows, self.cols, k - 1))
            self.node = torch.where((self.node >= 0) & (found >= 0), found + order.first, -1)
        context = torch.where(self.node >= 0, self.node - order.first, -1)
        gram = torch.where(self.node >= 0, self.find(order.keys, self.node * V + self.y), -1)
        self.lookups.append((context, gram))
        if k > 1:  # order k-1 is now below the top: its continuation counts are known
            lower = counted[-2]
            self.lower = self.interpolate(self.lower, lower.smoothed(lower.adjusted, V), *self.lookups[-2])
        top = self.interpolate(self.lower, order.smoothed(order.counts, V), context, gram)
        return float(-top.log().mean())

    @staticmethod
    def find(table: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """Each key's index in the sorted table, -1 where it is not in it."""
        if not len(table):
            return torch.full_like(key, -1)
        at = torch.searchsorted(table, key).clamp(max=len(table) - 1)
        return torch.where(table[at] == key, at, -1)

    @staticmethod
    def interpolate(p, smoothed, context, gram):
        gamma, discounted = smoothed
        if not len(gamma):  # an order past the longest item's: no context to mix in
            return p
        seen = context >= 0
        mixed = gamma[context.clamp(min=0)] * p + torch.where(gram >= 0, discounted[gram.clamp(min=0)], 0.0)
        return torch.where(seen, mixed, p)
