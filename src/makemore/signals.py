"""How the makemore command stops on a signal: one line on stderr, never a traceback.

Ctrl-C (SIGINT) raises KeyboardInterrupt, as Python does by default. SIGTERM (`kill`, a job
scheduler, a container stopping) raises `Terminated`, a KeyboardInterrupt, so whatever stops
cleanly on Ctrl-C stops the same way on SIGTERM: the trainer keeps its best model and writes its
summary. The exit status says which signal it was, as a shell reports a process killed by it:
130 (128 + SIGINT) or 143 (128 + SIGTERM).

PyTorch takes seconds to import, and a Ctrl-C then would print a traceback through its import
machinery. A command imports it only once it runs, inside `cli.main`, whose handlers above turn a
signal into one line there as anywhere. Before that, while the package and the command line
import, the package's __init__ has called `quiet_while_importing`: a signal then is one line too.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager

from .errors import secondary_rank

EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would raise KeyboardInterrupt."""


def running_as_command() -> bool:
    """`python -m makemore` (argv[0] is "-m" while the package imports) or the `makemore` script."""
    name = os.path.basename(sys.argv[0]) if sys.argv else ""
    return sys.argv[:1] == ["-m"] or name in ("makemore", "makemore.exe", "makemore-script.py")


def quit_quietly(signum, frame):
    if not secondary_rank():
        print("makemore: interrupted" if signum == signal.SIGINT else "makemore: terminated", file=sys.stderr)
    raise SystemExit(EXIT_STATUS[signum])


def quiet_while_importing() -> None:
    """Ctrl-C or SIGTERM before cli.main runs: one line and the usual status, no traceback.
    Does nothing when makemore is imported as a library: its caller owns the signals."""
    if running_as_command():
        for signum in EXIT_STATUS:
            replace(signum, quit_quietly)


def replace(signum: int, handler):
    """Install `handler` and return the one before, unless the signal is ignored: a process started
    with SIGINT ignored (a background job of a script) or SIGTERM ignored keeps ignoring it."""
    try:
        if signal.getsignal(signum) == signal.SIG_IGN:
            return None
        return signal.signal(signum, handler)
    except (ValueError, OSError):  # not the main thread, or a platform without the signal
        return None


received: int | None = None  # the last signal stop_on_signals turned into an exception


def raise_interrupt(signum, frame):
    global received
    received = signum
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextmanager
def stop_on_signals():
    """While the command runs: Ctrl-C raises KeyboardInterrupt and SIGTERM raises Terminated
    (`received` remembers which, for code that caught it and only reports "interrupted").
    The handlers in place before are put back afterwards (tests call cli.main in-process)."""
    global received
    received = None
    with handling(raise_interrupt):
        yield


def exit_status(interrupt: KeyboardInterrupt | None = None) -> int:
    """130 after Ctrl-C, 143 after SIGTERM: from the exception, or else from the last signal."""
    if interrupt is not None:
        return EXIT_STATUS[signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT]
    return EXIT_STATUS.get(received, 130)


requested: int | None = None  # a signal `deferred` noted and nobody has acted on yet


def note(signum, frame):
    global received, requested
    received = requested = signum


@contextmanager
def deferred():
    """While in this, Ctrl-C and SIGTERM are only noted in `requested`, for code that must choose
    where to stop: processes training one run together all stop at the same step, never one of
    them in the middle of an exchange with the others (which would leave those waiting)."""
    global requested
    requested = None
    with handling(note):
        yield


@contextmanager
def handling(handler):
    """`handler` for Ctrl-C and SIGTERM inside, the handlers before put back after (an ignored
    signal stays ignored: replace)."""
    previous = {signum: replace(signum, handler) for signum in EXIT_STATUS}
    try:
        yield
    finally:
        for signum, before in previous.items():
            if before is not None:
                signal.signal(signum, before)


def act_on_request() -> None:
    """Raise what the signal `deferred` noted would have raised: KeyboardInterrupt or Terminated."""
    global requested
    signum, requested = requested, None
    if signum is not None:
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
