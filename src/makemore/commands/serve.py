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
    add_device(p)
    return p


def run(args) -> int:
    from ..serve import Limits, serve  # needs the serve extra; says what to install when it is missing

    if not (args.time_limit > 0 and math.isfinite(args.time_limit)):
        raise MakemoreError(f"--time-limit must be a number of seconds above 0 (got {args.time_limit:g})")
    serve(args.run, host=args.host, port=args.port, device=args.device, limits=Limits(time_limit=args.time_limit),
          allowed_hosts=args.allowed_host)
    return 0
