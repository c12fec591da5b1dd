"""`makemore serve`: a web page and a JSON API over trained runs.

    GET  /                  the page (one HTML file shipped in the package: no build step, no CDN)
    GET  /api/health        is it up, and which models it serves
    GET  /api/models        each model's card: data, size, train/val/test NLL, loss curve
    POST /api/sample        generate items, each with its NLL per character
    POST /api/score         NLL of given items, and how surprised the model was at each character
    POST /api/train         train a new model on a list (a job; see jobs.py), served once trained
    GET  /api/jobs/<id>     a job's state and figures; DELETE stops it; /events streams them
    GET  /api/limits        what a request may ask, and whether and how much the server trains
    GET  /api/openapi.json  the API's OpenAPI schema

Runs are loaded at startup (the RUN arguments and the runs in --runs), and a job's run once
trained; they are looked up by name in a dict: nothing in a request ever becomes a file path (a
job's name is checked to be a plain folder name under --runs). Bad input is a 4xx with `{"error": "one line"}`, worded as the CLI words
it. Inference runs in a few worker threads off the event loop (see `Limits`). Only requests
addressed to the server's own names are answered (`AllowedHosts`), so that no other web page
can reach it through DNS rebinding. What one request may cost is bounded (`Limits`): its size,
its items x labels, its seconds of inference, and the time its client takes to send it.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import replace
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
from ..store import CONFIG, MODEL  # noqa: E402
from .app import create_app  # noqa: E402
from .hosts import LOCAL, AllowedHosts, host_name  # noqa: E402
from .limits import Limits  # noqa: E402
from .transport import listen, server, url  # noqa: E402

__all__ = ["AllowedHosts", "LOCAL", "Limits", "create_app", "found_runs", "host_name", "listen", "load_runs", "run_names",
           "serve", "serve_runs", "server", "url"]


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


def found_runs(runs_dir: str | Path, given: list[str], log=print) -> list[str]:
    """The run directories in `runs_dir` (each folder holding a config.json and a model), sorted,
    less those among the `given` RUN arguments; one that cannot be served is skipped with a line."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    seen = {Path(p).resolve() for p in given}
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.resolve() in seen or not (folder / CONFIG).exists():
            continue
        if not (folder / MODEL).exists():
            log(f"makemore: skipping {folder}: its training stopped before its first checkpoint, so it holds no model")
            continue
        found.append(str(folder))
    return found


def serve_runs(paths: list[str], runs_dir: str | Path | None, device: str = "auto", log=print) -> dict[str, Run]:
    """The RUN arguments (or the bundled model), then every run in `runs_dir` by its folder's name;
    a run there that does not load is skipped with one line, as the server must start for the rest."""
    runs = load_runs(paths, device, log)
    for path in found_runs(runs_dir, paths, log) if runs_dir is not None else []:
        name = run_names([*runs, path])[-1] if Path(path).name in runs else Path(path).name
        try:
            runs[name] = load(path, device=device)
        except MakemoreError as e:
            log(f"makemore: skipping {path}: {e}")
    return runs


def serve(paths: list[str], host: str = "127.0.0.1", port: int = 8000, device: str = "auto",
          limits: Limits = Limits(), log_level: str = "info", allowed_hosts: list[str] = (),
          runs_dir: str | Path | None = "runs", allow_training: bool = False) -> None:
    """Load the runs (or the bundled model) and those in `runs_dir`, then serve them until Ctrl-C,
    answering requests addressed to the names of `host` and `allowed_hosts` (AllowedHosts.of).
    Lists posted to /api/train are trained into `runs_dir`: on a loopback address, or with
    `allow_training` anywhere (a job costs minutes of CPU, and anyone who reaches the server can ask)."""
    torch.set_num_threads(1)  # see Limits.workers
    AllowedHosts.given(allowed_hosts)  # a bad --allowed-host: one line before the runs load
    say = lambda message: print(message, file=sys.stderr)  # noqa: E731
    runs = serve_runs(paths, runs_dir, device, log=say)
    sock = listen(host, port)
    address = sock.getsockname()[0]
    loopback = ipaddress.ip_address(address.split("%")[0]).is_loopback
    limits = replace(limits, training=limits.training and runs_dir is not None and (loopback or allow_training))
    if runs_dir is not None and not limits.training:
        say(f"makemore: training from the page is off, as the server listens on {address}; pass --allow-training to allow it")
    app = create_app(runs, limits, AllowedHosts.of(host, address, allowed_hosts), runs_dir=runs_dir)
    if limits.training:
        say(f"makemore: models trained from the page go to {Path(runs_dir).resolve()}")
    print(f"makemore: serving {', '.join(runs)} at {url(sock)}  (Ctrl-C stops)", flush=True)
    server(app, limits, log_level).run(sockets=[sock])
