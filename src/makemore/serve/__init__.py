"""`makemore serve`: a web page and a JSON API over trained runs.

    GET  /                  the page (one HTML file shipped in the package: no build step, no CDN)
    GET  /api/health        is it up, and which models it serves
    GET  /api/models        each model's card: data, size, train/val/test NLL, loss curve
    POST /api/sample        generate items, each with its NLL per character
    POST /api/score         NLL of given items, and how surprised the model was at each character
    GET  /api/openapi.json  the API's OpenAPI schema

Runs are loaded once at startup and looked up by name in a dict: nothing in a request ever
becomes a file path. Bad input is a 4xx with `{"error": "one line"}`, worded as the CLI words
it. Inference runs in a few worker threads off the event loop (see `Limits`). Only requests
addressed to the server's own names are answered (`AllowedHosts`), so that no other web page
can reach it through DNS rebinding. What one request may cost is bounded (`Limits`): its size,
its items x labels, its seconds of inference, and the time its client takes to send it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import MakemoreError

try:
    import anyio  # noqa: F401
    import fastapi  # noqa: F401
    import pydantic  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as e:
    raise MakemoreError(f"makemore serve needs FastAPI and uvicorn ({e.name} is not installed): pip install 'makemore[serve]'") from None

import torch  # noqa: E402

from ..api import PRETRAINED, Run, load, load_pretrained  # noqa: E402
from .app import create_app  # noqa: E402
from .hosts import LOCAL, AllowedHosts, host_name  # noqa: E402
from .limits import Limits  # noqa: E402
from .transport import listen, server, url  # noqa: E402

__all__ = ["AllowedHosts", "LOCAL", "Limits", "create_app", "host_name", "listen", "load_runs", "run_names", "serve",
           "server", "url"]


def run_names(paths: list[str]) -> list[str]:
    """Each run's name on the page: its directory's name, with -2, -3, ... for repeats."""
    names = []
    for p in paths:
        base = Path(p).resolve().name or "run"
        name, k = base, 1
        while name in names:
            k += 1
            name = f"{base}-{k}"
        names.append(name)
    return names


def load_runs(paths: list[str], device: str = "auto", log=print) -> dict[str, Run]:
    """The runs by the names requests use; with no path, the model bundled with makemore."""
    if not paths:
        run = load_pretrained(device=device)
        log(f"makemore: no run given, so serving the bundled model ({run.config['model']} trained on "
            f"{run.config['data']['source']}); pass run directories to serve your own")
        return {run_names([PRETRAINED])[0]: run}
    return {name: load(p, device=device) for name, p in zip(run_names(paths), paths)}


def serve(paths: list[str], host: str = "127.0.0.1", port: int = 8000, device: str = "auto",
          limits: Limits = Limits(), log_level: str = "info", allowed_hosts: list[str] = ()) -> None:
    """Load the runs (or the bundled model), then serve them until Ctrl-C, answering requests
    addressed to the names of `host` and `allowed_hosts` (AllowedHosts.of)."""
    torch.set_num_threads(1)  # see Limits.workers
    AllowedHosts.given(allowed_hosts)  # a bad --allowed-host: one line before the runs load
    runs = load_runs(paths, device, log=lambda message: print(message, file=sys.stderr))
    sock = listen(host, port)
    app = create_app(runs, limits, AllowedHosts.of(host, sock.getsockname()[0], allowed_hosts))
    print(f"makemore: serving {', '.join(runs)} at {url(sock)}  (Ctrl-C stops)", flush=True)
    server(app, limits, log_level).run(sockets=[sock])
