"""`makemore train --nproc N`: start N training processes on this machine through torchrun's own
launcher (torch.distributed.launcher, what `torchrun --standalone` runs), each of them this same
command, and wait for them.

The processes print what a one-process run prints (rank 0 alone; distributed.py); the launcher
adds nothing of its own: no log lines, and no traceback when a process fails or a signal stops
them. The exit status is rank 0's (2 for a bad option, 3 for a divergence), or 130/143 after
Ctrl-C/SIGTERM, which the launcher passes on to every process so that each stops cleanly.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import uuid

from .device import cpu_threads
from .errors import MakemoreError, world_size
from .signals import EXIT_STATUS


def check_nproc(nproc: int) -> None:
    """Under torchrun already: --nproc must agree with it (makemore's own launcher passes it on)."""
    if nproc < 1:
        raise MakemoreError(f"--nproc must be at least 1 (got {nproc})")
    if world_size() > 1 and nproc != world_size():
        raise MakemoreError(f"--nproc {nproc} inside a run torchrun started with {world_size()} processes; drop --nproc "
                            "under torchrun")


def launch(nproc: int, argv: list[str]) -> int:
    """Run `makemore ARGV` in `nproc` processes; its exit status."""
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if "OMP_NUM_THREADS" not in os.environ:  # share the cores out, rather than each process taking them all
        os.environ["OMP_NUM_THREADS"] = str(max(1, cpu_threads()[0] // nproc))
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()), rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", max_restarts=0)  # a free port on this machine, as --standalone
    logging.disable(logging.CRITICAL)  # the launcher's own log lines and failure reports
    handlers = {signum: signal.getsignal(signum) for signum in EXIT_STATUS}  # the launcher replaces them
    try:
        elastic_launch(config, sys.executable)("-m", "makemore", *argv)
        return 0
    except ChildFailedError as e:
        codes = [failure.exitcode for _, failure in sorted(e.failures.items())]  # rank 0's first
        return next((code for code in codes if code > 0), 128 - codes[0])  # killed by a signal: 128 + its number
    except SignalException as e:
        return EXIT_STATUS.get(e.sigval, 128 + int(e.sigval))
    finally:
        logging.disable(logging.NOTSET)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
