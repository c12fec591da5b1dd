"""The run directory's names as they were imported before the store/ package: kept so that code
written against `makemore.checkpoint` (the API, scripts, benchmarks) keeps working. New code
imports from `makemore.store`."""

from .store import *  # noqa: F401,F403
from .store import __all__  # noqa: F401
