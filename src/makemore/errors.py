"""Errors a person can cause. The CLI prints their message on one line and exits with `exit_code`."""

import errno
import os


def world_size() -> int:
    """How many processes train this run: torchrun's WORLD_SIZE, else 1 (distributed.py)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def secondary_rank() -> bool:
    """A process of a distributed run other than rank 0. Rank 0 reports what every rank meets (a
    bad option, an interruption, a divergence), so the user reads each line once."""
    return world_size() > 1 and os.environ.get("RANK", "0") != "0"


class MakemoreError(Exception):
    """A mistake in the input (file, option, run directory) that the user can fix."""

    exit_code = 2


class DataError(MakemoreError):
    """The data file cannot be used as a list of items."""


def too_long(chars: int, most: int) -> DataError:
    """An item longer than a model takes: a model's positions end at the longest item in its training data."""
    return DataError(f"an item has {chars} characters; this model takes items of at most {most} ({LONGEST}); "
                     "leave longer items out")


LONGEST = "the longest in its training data"  # what a model's limit on an item's length is


class RunError(MakemoreError):
    """The run directory is missing, incomplete or corrupted."""


class Diverged(MakemoreError):
    """Training produced a loss that is not a finite number; the best finite model, if any, is kept."""

    exit_code = 3


class WriteFailed(MakemoreError):
    """A file could not be written: the disk is full, the folder is read-only, ... `full` says
    whether it was the disk's space (ENOSPC, or a quota: EDQUOT), for callers that know what to do then."""

    def __init__(self, path, error: OSError, todo: str | None = None):
        self.path, self.error, self.errno = path, error, error.errno
        self.full = error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
        read_only = error.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
        why = ("the disk is full" if error.errno == errno.ENOSPC else "the disk quota is used up" if self.full
               else error.strerror or str(error))
        if todo is None:
            todo = ("free some space and try again" if self.full else
                    "choose a folder you can write" if read_only else "check the disk and try again")
        super().__init__(f"cannot write {path}: {why}; {todo}")
