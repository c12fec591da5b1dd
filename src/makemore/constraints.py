"""What sampled items must be: start, end, contain, length, not excluded, not repeated.

Two kinds of constraint, chosen by what is cheap to do exactly:

- shaped while drawing: `prefix` is fed to the model; `max_len` ends an item at that many
  characters; `min_len` rules the end boundary out before that many; `alphabet` and `script` rule
  the characters outside them out at every step. Every item then meets them,
  but the length rules change the odds: an item the model would have made longer is cut, and one
  it would have ended sooner runs on, so the items follow the model's distribution conditioned
  on the length only approximately.
- filtered after drawing: `suffix`, `contains`, `exclude` (and `novel`, which excludes the
  training items), `unique`. Items that fail are dropped, within one draw budget for all of them:
  at most max(1000, 50 n) items drawn (`budget`). Fewer than n found raises NotEnough, which
  carries the ones found.

Items are drawn a chunk at a time (`chunk_size`) and can be given as each chunk is drawn
(`Constraints.stream`), so a million items are never all in memory; only `unique` (and `novel`)
remember every item given, to give none twice.

A constraint no item can meet is refused at once, before any drawing (`Constraints.check`).
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

from . import seen
from .config import OptionError, SampleConfig
from .data import Vocabulary, decode, read_bytes
from .errors import LONGEST, DataError, MakemoreError

CHUNK = 4096  # items generated at once; bounds memory for large n
# ...and at most this many numbers in a chunk's tokens and each step's probabilities (several copies):
# a model of very long items or a large vocabulary draws fewer at once (about 128 MB for a chunk)
SAMPLE_ELEMENTS = 1 << 24


def chunk_size(longest: int, vocab_size: int) -> int:
    """Items to draw at once: CHUNK, or fewer when CHUNK items of up to `longest` characters over a
    vocabulary of `vocab_size` tokens would take more than SAMPLE_ELEMENTS numbers. For names (15
    characters, 27 tokens) it is CHUNK."""
    return max(1, min(CHUNK, SAMPLE_ELEMENTS // (longest + 8 * vocab_size)))


def budget(n: int) -> int:
    """How many items filtering constraints may draw to find n: the one rule for all of them."""
    return max(1000, 50 * n)


class NotEnough(MakemoreError):
    """Fewer items than asked met the constraints within the draw budget: `count` did. `found`
    holds them, from `Constraints.sample`; a stream has given them already and leaves it empty."""

    exit_code = 1

    def __init__(self, count: int, wanted: int, draws: int, what: str):
        self.found: list[str] = []
        self.count, self.wanted, self.draws = count, wanted, draws
        super().__init__(f"found only {count} of {wanted} {what} in {draws} draws; "
                         "ask for fewer, loosen the constraints or raise --temperature")


def read_exclude(path: str) -> "frozenset[str] | seen.Seen":
    """The items of an exclude file, read as data files are (stripped lines; blank ones dropped). An
    empty file excludes nothing."""
    try:
        if Path(path).is_dir():
            raise DataError(f"{path} is a directory; pass a text file with one item per line")
        text = decode(read_bytes(Path(path)), Path(path))
    except DataError as e:
        problem = str(e)
        raise OptionError(lambda show: f"{show('exclude')}: {problem}") from None
    return seen.of_lines([item for item in (line.strip() for line in text.split("\n")) if item])  # a large file: hashes


@dataclass(frozen=True)
class Constraints:
    prefix: str = ""
    suffix: str = ""
    contains: str = ""
    min_len: int = 1  # the data has no empty item, so an item always has at least one character
    max_len: int | None = None  # None: the model's own limit alone
    exclude: frozenset[str] = frozenset()
    unique: bool = False
    novel: bool = False  # only for describing: its training items are already in `exclude`
    exclude_file: str | None = None  # likewise
    alphabet: str | None = None  # the characters items may have (None: any)
    script: str | None = None  # the Unicode script their letters must be of (None: any)

    @classmethod
    def of(cls, config: SampleConfig, vocab: Vocabulary, model_max_len: int,
           training_items: Callable[[], Iterable[str]]) -> "Constraints":
        """The constraints a checked SampleConfig asks of a model, refused at once if no item can meet
        them (`check`); the exclude file and, for `novel`, the training items are read after that."""
        wanted = cls(prefix=config.prefix, suffix=config.suffix, contains=config.contains, min_len=config.min_len or 1,
                     max_len=config.max_len, unique=config.unique or config.novel, novel=config.novel,
                     exclude_file=config.exclude, alphabet=config.alphabet,
                     script=None if config.script is None else config.script.strip().upper())
        wanted.check(vocab, model_max_len)
        exclude = read_exclude(config.exclude) if config.exclude is not None else frozenset()
        if config.novel:
            exclude = exclude | training_items()  # a set, or seen.py's hashes of a large file's items
        return replace(wanted, exclude=exclude)

    def longest(self, model_max_len: int) -> int:
        """The most characters an item may have: the model's limit (the longest item in its data) or max_len."""
        return model_max_len if self.max_len is None else min(self.max_len, model_max_len)

    def check(self, vocab: Vocabulary, model_max_len: int) -> None:
        """Refuse, in one line, a constraint that no item could meet, before anything is drawn."""
        for name in ("prefix", "suffix", "contains"):
            unseen = vocab.unknown(getattr(self, name))
            if unseen:
                shown = ", ".join(repr(ch) for ch in unseen)
                hint = vocab.known(getattr(self, name))
                raise OptionError(lambda show, name=name, shown=shown, hint=hint: f"{show(name)} has characters the model "
                                                                                  f"never saw in training ({shown}); {hint}")
        if self.min_len > model_max_len:
            raise OptionError(lambda show: f"{show('min_len')} is {self.min_len}, but this model makes items of at most "
                                           f"{model_max_len} characters ({LONGEST})")
        self.check_characters(vocab)
        longest = self.longest(model_max_len)

        def limit(show) -> str:  # what sets `longest`, in words
            if self.max_len is not None and self.max_len <= model_max_len:
                return f"{show('max_len')} {self.max_len}"
            return f"this model's longest item ({model_max_len} characters)"

        if self.prefix and len(self.prefix) >= longest:
            raise OptionError(lambda show: f"{show('prefix')} has {len(self.prefix)} characters, which leaves no room "
                                           f"under {limit(show)}; use a shorter prefix")
        for name in ("suffix", "contains"):
            text = getattr(self, name)
            if len(text) > longest:
                raise OptionError(lambda show, name=name, text=text: f"{show(name)} has {len(text)} characters, more than "
                                                                     f"{limit(show)}; no item can hold it")

    def may_have(self, ch: str) -> bool:
        """Whether `alphabet` and `script` let an item have the character `ch`."""
        if self.alphabet is not None and ch not in self.alphabet:
            return False
        return self.script is None or not unicodedata.category(ch).startswith("L") or script_of(ch) == self.script

    def allowed_tokens(self, vocab: Vocabulary):
        """A bool per token of `vocab`: the characters items may have (None when every one may)."""
        if self.alphabet is None and self.script is None:
            return None
        import torch

        allowed = torch.ones(len(vocab), dtype=torch.bool)
        for i, ch in enumerate(vocab.alphabet, 1):
            allowed[i] = self.may_have(ch)
        return allowed

    def check_characters(self, vocab: Vocabulary) -> None:
        """Refuse an alphabet or script no item of this model could keep to, or that the given texts break."""
        if self.script is not None and not any(unicodedata.category(ch).startswith("L") and script_of(ch) == self.script
                                               for ch in vocab.alphabet):
            scripts = sorted({script_of(ch) for ch in vocab.alphabet if unicodedata.category(ch).startswith("L")})
            raise OptionError(lambda show: f"{show('script')} {self.script.lower()}: this model has no letter of that script; "
                                           f"its letters are of: {', '.join(s.lower() for s in scripts) or 'none'}")
        if self.alphabet is not None and not any(self.may_have(ch) for ch in vocab.alphabet):
            raise OptionError(lambda show: f"{show('alphabet')} has none of the characters this model makes; no item can "
                                           "keep to it")
        for name in ("prefix", "suffix", "contains"):
            outside = [ch for ch in dict.fromkeys(getattr(self, name)) if not self.may_have(ch)]
            if outside:
                shown = ", ".join(map(repr, outside))
                raise OptionError(lambda show, name=name, shown=shown: f"{show(name)} has characters outside "
                                                                       f"{show('alphabet') if self.alphabet is not None else show('script')} "
                                                                       f"({shown}); no item can have both")

    @property
    def filters(self) -> bool:
        """Whether any drawn item may fail, so items must be checked and the budget applies. min_len
        shapes items, but an item may still end early where the model gives nothing but the end
        (a bigram count table without smoothing), so it is checked too."""
        return bool(self.suffix or self.contains or self.exclude or self.unique or self.min_len > 1)

    def allows(self, item: str) -> bool:
        """An item meets the filtered constraints (the shaped ones hold by construction)."""
        return (item.endswith(self.suffix) and self.contains in item and len(item) >= self.min_len
                and item not in self.exclude)

    def describe(self) -> str:
        """The items asked for, in words: "novel items (ending with 'a', containing 'li')"."""
        kind = "novel items" if self.novel else "distinct items" if self.unique else "items"
        parts = [f"starting with {self.prefix!r}"] if self.prefix else []
        if self.suffix:
            parts.append(f"ending with {self.suffix!r}")
        if self.contains:
            parts.append(f"containing {self.contains!r}")
        if self.min_len > 1 and self.max_len is not None:
            parts.append(f"of {self.min_len} to {self.max_len} characters")
        elif self.min_len > 1 or self.max_len is not None:
            parts.append(f"of at least {self.min_len} characters" if self.min_len > 1 else f"of at most {self.max_len} characters")
        if self.alphabet is not None:
            parts.append(f"only of {self.alphabet!r}")
        if self.script is not None:
            parts.append(f"in {self.script.lower()} letters")
        if self.exclude_file is not None:
            parts.append(f"not in {self.exclude_file}")
        return f"{kind} ({', '.join(parts)})" if parts else kind

    def sample(self, draw: Callable[[int], list[str]], n: int, max_draws: int | None = None, chunk: int = CHUNK) -> list[str]:
        """n items from `draw(k)` (k items at a time, at most `chunk`) that meet the constraints."""
        items: list[str] = []
        try:
            for part in self.stream(draw, n, max_draws, chunk):
                items += part
        except NotEnough as e:
            e.found = items
            raise
        return items

    def stream(self, draw: Callable[[int], list[str]], n: int, max_draws: int | None = None,
               chunk: int = CHUNK) -> Iterator[list[str]]:
        """The items of `sample`, in the same order, as lists given as each draw is made."""
        if not self.filters:
            for i in range(0, n, chunk):
                yield draw(min(chunk, n - i))
            return
        limit = max_draws or budget(n)
        seen: set[str] = set()  # only for `unique`: the one thing that grows with n
        found = draws = 0
        while found < n and draws < limit:
            k = min(chunk, max(256, 2 * (n - found)), limit - draws)
            draws += k
            part = []
            for item in draw(k):
                if found < n and self.allows(item) and not (self.unique and item in seen):
                    part.append(item)
                    found += 1
                    if self.unique:
                        seen.add(item)
            if part:
                yield part
        if found < n:
            raise NotEnough(found, n, draws, self.describe())


@dataclass(frozen=True)
class Sampling:
    """One checked request for items, ready to draw: its config (the seed drawn if none was given),
    its constraints, the function drawing k items and how many to draw at once. The CLI, the
    Python API and the page all sample through it (Run.sampling)."""

    config: SampleConfig
    wanted: Constraints
    draw: Callable[[int], list[str]]
    chunk: int

    @property
    def first_draw(self) -> int:
        """Items drawn before the first is given: all n, or a first batch when some may fail."""
        n = self.config.n
        return min(n, self.chunk) if not self.wanted.filters else min(self.chunk, max(256, 2 * n))

    def items(self) -> list[str]:
        return self.wanted.sample(self.draw, self.config.n, self.config.max_draws, self.chunk)

    def stream(self) -> Iterator[list[str]]:
        return self.wanted.stream(self.draw, self.config.n, self.config.max_draws, self.chunk)


def script_of(ch: str) -> str:
    """A letter's script, as the first word of its Unicode name: LATIN, CYRILLIC, GREEK, CJK, ..."""
    return unicodedata.name(ch, "?").split()[0]


def as_text_path(value):
    """`exclude` may be given to the Python API as a path object; the option itself is text."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value
