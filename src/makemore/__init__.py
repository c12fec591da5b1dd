"""makemore: give it a file with one item per line, and it learns to make more things like them."""

from .version import __version__  # noqa: E402, F401 - a leaf module: what records the version need not import this

from .signals import quiet_while_importing  # noqa: E402

quiet_while_importing()  # Ctrl-C while PyTorch imports: one line, not a traceback (signals.py)

from .api import Run, load, load_pretrained  # noqa: E402
from .errors import MakemoreError  # noqa: E402
from .trainer import resume, train  # noqa: E402

__all__ = ["train", "resume", "load", "load_pretrained", "Run", "MakemoreError", "__version__"]
