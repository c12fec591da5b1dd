"""makemore: give it a file with one item per line, and it learns to make more things like them."""

from importlib import import_module

from .errors import MakemoreError
from .signals import quiet_while_importing
from .version import __version__

quiet_while_importing()  # a signal before cli.main takes over: one line, not a traceback (signals.py)

# The API is imported when first used (PEP 562), so that `import makemore` and the command line,
# which imports this first, do not import PyTorch until something needs it: `makemore --help` and
# an argument error answer at once. `makemore.train` and `from makemore import train` work as usual.
LAZY = {"train": "trainer", "resume": "trainer", "load": "api", "load_pretrained": "api", "Run": "api"}

__all__ = ["train", "resume", "load", "load_pretrained", "Run", "MakemoreError", "__version__"]


def __getattr__(name: str):
    if name not in LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{LAZY[name]}", __name__), name)
    globals()[name] = value  # the next look-up finds it at once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *LAZY})
