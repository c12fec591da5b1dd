"""Errors a person can cause. The CLI prints their message on one line and exits with `exit_code`."""

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


class RunError(MakemoreError):
    """The run directory is missing, incomplete or corrupted."""


class Diverged(MakemoreError):
    """Training produced a loss that is not a finite number; the best finite model, if any, is kept."""

    exit_code = 3
