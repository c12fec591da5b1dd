"""The seeds' split shuffle, `random.Random(seed).shuffle(list(range(n)))`, computed with numpy.

random.shuffle of ten million items takes about 12 s and a list of ten million Python ints (360
MB); this gives the same permutation in a third of the time and a few arrays of int64. Shuffling
range(n) moves the items exactly as shuffling the items does (shuffle looks only at the length),
so the permutation splits any file as the seeds split their list of words.

How. random.shuffle swaps x[i] with x[j], j = randbelow(i + 1), for i from n-1 down to 1, and
randbelow(m) takes 32-bit words of the Mersenne Twister (k = m.bit_length() top bits of each)
until one is below m. `draws` reads the same words from numpy's MT19937 set to Python's state,
and finds every j at once: word t is tried by the step after those accepted before it, a causal
fixed point that a few rounds of numpy settle. `shuffled` then replays the swaps without a loop:
what position i holds when step i reads it is what the last earlier step to write there moved,
found by sorting the steps by (j, i), and followed to its origin by pointer doubling.
"""

from __future__ import annotations

import random

import numpy as np

SEQUENTIAL_BELOW = 2048  # bounds below which draws are made one at a time (that many steps at most)
CHUNK_WORDS = 1 << 16  # words tried at once


class Words:
    """The 32-bit outputs of the Mersenne Twister of a random.Random, read ahead in numpy."""

    def __init__(self, rng: random.Random):
        state = rng.getstate()[1]  # 624 words of state and the position in them
        self.bits = np.random.MT19937()
        self.bits.state = {"bit_generator": "MT19937",
                           "state": {"key": np.array(state[:624], dtype=np.uint32), "pos": state[624]}}
        self.buf = np.zeros(0, dtype=np.int64)

    def peek(self, n: int) -> np.ndarray:
        if len(self.buf) < n:
            more = self.bits.random_raw(max(n - len(self.buf), CHUNK_WORDS)).astype(np.int64)
            self.buf = np.concatenate([self.buf, more])
        return self.buf[:n]

    def advance(self, n: int) -> None:
        self.buf = self.buf[n:]


def draws(n: int, seed) -> np.ndarray:
    """The j of each step of random.Random(seed).shuffle on n items: js[s] for i = n-1-s."""
    words = Words(random.Random(seed))
    js = np.empty(max(n - 1, 0), dtype=np.int64)
    s = 0
    while s < n - 1:
        m = n - s  # this step draws below m
        k = m.bit_length()
        if m < SEQUENTIAL_BELOW:
            while (c := int(words.peek(1)[0]) >> (32 - k)) >= m:
                words.advance(1)
            words.advance(1)
            js[s] = c
            s += 1
            continue
        steps = m - (1 << (k - 1)) + 1  # the steps left that draw k bits
        c = words.peek(min(CHUNK_WORDS, m >> 6)) >> (32 - k)
        # before[t]: words accepted before word t, so word t is tried against m - before[t]. Each round
        # settles at least the next word; as a chunk is short beside m, a few rounds settle them all.
        before = np.zeros(len(c), dtype=np.int64)
        while True:
            accept = c < m - before
            again = np.concatenate([[0], np.cumsum(accept)[:-1]])
            if np.array_equal(again, before):
                break
            before = again
        taken = np.flatnonzero(accept)[:steps]
        js[s : s + len(taken)] = c[taken]
        words.advance(int(taken[-1]) + 1 if len(taken) == steps else len(c))
        s += len(taken)
    return js


def shuffled(n: int, seed) -> np.ndarray:
    """random.Random(seed).shuffle(list(range(n))) as an int64 array."""
    if n < 2 or n >= 1 << 31:  # (j * n + i below 2**63; more items than this are read by no machine here)
        order = list(range(n))
        random.Random(seed).shuffle(order)
        return np.array(order, dtype=np.int64)
    js = draws(n, seed)
    steps = np.arange(n - 1, 0, -1, dtype=np.int64)  # step s swaps position steps[s] with js[s]
    keys = js * n + steps
    order = np.argsort(keys)
    sk = keys[order]  # the steps by (j, i)
    del keys
    group = sk // n
    same = group[1:] == group[:-1]
    # the last step before step s to write position js[s]: the next larger i with the same j
    writer = np.full(n - 1, -1, dtype=np.int64)
    writer[order[:-1][same]] = sk[1:][same] % n
    del same, group, order
    # origin[i]: the last step before step i to write position i (or i: none did), then followed
    # back to the first: position i holds item origin[i] when step i reads it
    i = np.arange(n, dtype=np.int64)
    q = np.minimum(np.searchsorted(sk, i * n + i, side="right"), len(sk) - 1)
    origin = np.where(sk[q] // n == i, sk[q] % n, i)
    del q, sk, i
    while not np.array_equal(deeper := origin[origin], origin):
        origin = deeper
    out = np.empty(n, dtype=np.int64)
    out[steps] = np.where(writer >= 0, origin[np.maximum(writer, 0)], js)  # step i leaves there what position j held
    out[0] = origin[0]
    return out
