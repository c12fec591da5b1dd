"""A time limit for work done in chunks (model steps, batches of items).

`makemore serve` runs each request under `time_limit(seconds)`; the loops that do the work call
`check()` between chunks, which raises TimeLimit once the limit has passed. So a request that
would take minutes stops within one chunk of its limit and frees its worker thread, which a
timeout around the thread could not do: a Python thread cannot be stopped from outside.
Without a limit (the command line, the Python API) `check()` does nothing.

A training run's evaluation checks the same way whether a stop was asked for (`stop_when`): the
page's Stop, or `event.stop()`, during an evaluation of a long split ends it within one chunk.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable

from .errors import MakemoreError

clock = time.monotonic  # tests replace it
_deadline: ContextVar[tuple[float, float] | None] = ContextVar("makemore_deadline", default=None)
_stop: ContextVar[Callable[[], bool] | None] = ContextVar("makemore_stop", default=None)


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


@contextmanager
def stop_when(asked: Callable[[], bool]):
    """Within the block, `check()` raises KeyboardInterrupt (as Ctrl-C would) once `asked()` is true."""
    token = _stop.set(asked)
    try:
        yield
    finally:
        _stop.reset(token)


def check() -> None:
    """Raise TimeLimit if the current limit has passed; KeyboardInterrupt if a stop was asked for."""
    asked = _stop.get()
    if asked is not None and asked():
        raise KeyboardInterrupt
    limit = _deadline.get()
    if limit is not None and clock() >= limit[0]:
        raise TimeLimit(limit[1])
