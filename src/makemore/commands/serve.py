"""`makemore serve [RUN...]`: a web page and a JSON API over runs (serve.py, the serve extra)."""

from __future__ import annotations

import math

from ..errors import MakemoreError
from .options import add_device


def add_parser(commands):
    p = commands.add_parser("serve", help="a web page and a JSON API to generate and score (needs makemore[serve])")
    p.add_argument("run", nargs="*", help="run directories to serve, each named after its directory (default: the bundled model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="also answer requests addressed to this name (repeatable; '*' for any). Without it the server "
                        "answers only its own names: localhost, 127.0.0.1 and [::1] for the default --host, so that "
                        "no other web page can reach it through DNS rebinding")
    p.add_argument("--time-limit", type=float, default=10.0, metavar="SECONDS",
                   help="seconds of computing one request may take before it is stopped and answered 503 (default 10)")
    p.add_argument("--runs", default="runs", metavar="DIR",
                   help="where models trained from the page go, each an ordinary run directory; the runs already "
                        "there are served too (default ./runs)")
    p.add_argument("--allow-training", action="store_true",
                   help="let the page train models when the server listens beyond this machine (on by default only "
                        "on a loopback address such as the default --host)")
    # defaults None: Limits' own (the serve extra may not be installed, so it is not imported here)
    p.add_argument("--train-items", type=int, metavar="N", help="items a list to train on may hold (default 100,000)")
    p.add_argument("--train-bytes", type=int, metavar="BYTES", help="bytes a training request may send (default 4 MiB)")
    p.add_argument("--train-seconds", type=float, metavar="SECONDS",
                   help="the longest time budget a training job may ask for (default 600)")
    p.add_argument("--queued-jobs", type=int, metavar="N",
                   help="training jobs that may wait behind the one running (default 4); one trains at a time")
    add_device(p)
    return p


def run(args) -> int:
    from ..data import MIN_ITEMS
    from ..serve import Limits, serve  # needs the serve extra; says what to install when it is missing

    for flag, value in (("--time-limit", args.time_limit), ("--train-seconds", args.train_seconds)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise MakemoreError(f"{flag} must be a number of seconds above 0 (got {value:g})")
    for flag, value, low in (("--train-items", args.train_items, MIN_ITEMS), ("--train-bytes", args.train_bytes, 1),
                             ("--queued-jobs", args.queued_jobs, 0)):
        if value is not None and value < low:
            raise MakemoreError(f"{flag} must be at least {low} (got {value})")
    given = {"time_limit": args.time_limit, "train_items": args.train_items, "train_bytes": args.train_bytes,
             "train_seconds": args.train_seconds, "queued_jobs": args.queued_jobs}
    limits = Limits(**{k: v for k, v in given.items() if v is not None})
    serve(args.run, host=args.host, port=args.port, device=args.device, limits=limits, allowed_hosts=args.allowed_host,
          runs_dir=args.runs, allow_training=args.allow_training)
    return 0
