"""A time limit for work done in chunks (model steps, batches of items).

`makemore serve` runs each request under `time_limit(seconds)`; the loops that do the work call
`check()` between chunks, which raises TimeLimit once the limit has passed. So a request that
would take minutes stops within one chunk of its limit and frees its worker thread, which a
timeout around the thread could not do: a Python thread cannot be stopped from outside.
Without a limit (the command line, the Python API) `check()` does nothing.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar

from .errors import MakemoreError

clock = time.monotonic  # tests replace it
_deadline: ContextVar[tuple[float, float] | None] = ContextVar("makemore_deadline", default=None)


class TimeLimit(MakemoreError):
    """The work took longer than the limit it was given, and was stopped."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"stopped after {seconds:g} s, its time limit")


@contextmanager
def time_limit(seconds: float):
    """Run the block under a limit of `seconds` from now (in this thread's context)."""
    token = _deadline.set((clock() + seconds, seconds))
    try:
        yield
    finally:
        _deadline.reset(token)


def check() -> None:
    """Raise TimeLimit if the current limit has passed."""
    limit = _deadline.get()
    if limit is not None and clock() >= limit[0]:
        raise TimeLimit(limit[1])
