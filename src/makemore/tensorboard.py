"""Optional TensorBoard logging (--tensorboard), as the original makemore.py does it:
losses and learning rate, into RUN/tensorboard. Needs the `tensorboard` extra."""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import MakemoreError
from .store import TENSORBOARD


def require() -> None:
    """Fail before training starts, not at the first evaluation."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise MakemoreError("--tensorboard needs TensorBoard: pip install 'makemore[tensorboard]'") from None


class Board:
    def __init__(self, run_path: Path, step: int):
        from torch.utils.tensorboard import SummaryWriter

        # a resumed run hides what the stopped one logged after its checkpoint at `step` (kept: that evaluation)
        self.writer = SummaryWriter(str(run_path / TENSORBOARD), purge_step=step + 1 if step else None)

    def steps(self, first: int, losses: torch.Tensor) -> None:
        """The training loss of each step from `first` on."""
        for i, value in enumerate(losses.tolist()):
            self.writer.add_scalar("loss/step", value, first + i)

    def evaluation(self, record: dict) -> None:
        step = record["step"]
        self.writer.add_scalar("loss/train", record["train_loss"], step)
        self.writer.add_scalar("loss/val", record["val_loss"], step)
        self.writer.add_scalar("lr", record["lr"], step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
