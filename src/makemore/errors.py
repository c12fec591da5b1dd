"""Errors a person can cause. The CLI prints their message on one line and exits with `exit_code`."""


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
