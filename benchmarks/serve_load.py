"""Load on `makemore serve`: many clients at once, mixed sample and score requests, on this machine only.

    python benchmarks/serve_load.py                          # train an lstm for 60 s, serve it, 10,000 requests
    python benchmarks/serve_load.py --run runs/serve-lstm    # serve that run (trained there first if absent)
    python benchmarks/serve_load.py --url http://127.0.0.1:8000/ --model lstm   # a server already running here

It starts the server as a user would (`makemore serve RUN --port 0`, in its own process), sends a
bounded number of requests from `--clients` concurrent clients, half `POST /api/sample` with
n=10 and half `POST /api/score` of one name with its per-character explanation (what the page
asks for), and reports requests per second, p50/p99 latency and the errors: any answer but a 200,
or no answer. The results go to benchmarks/results/serve_load.json with the machine's float32
matmul speed and load average beside them (measured before the server starts). The clients run
on the same machine as the server and take CPU from it; the figures are for everything on one
machine, and move with whatever else it is running.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import torch

import makemore
from makemore.data import resolve_data
from makemore.serve import Limits

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "serve_load.json"
sys.path.insert(0, str(HERE))
from models import machine_gflops  # noqa: E402  (benchmarks/models.py)


def loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_run(path: Path | None, seconds: float, workdir: Path) -> Path:
    """The run to serve: `path` if it is a run, else an lstm trained there for `seconds` on the built-in names."""
    if path is not None and (path / "config.json").exists():
        return path
    out = path or workdir / "lstm"
    print(f"training the default lstm on the built-in names for {seconds:g} s into {out} ...", file=sys.stderr)
    makemore.train(data="names", model="lstm", out=out, time_budget=seconds, quiet=True, log=lambda m: None)
    return out


def start_server(serve_args: list[str], log: Path, who: str = "serve_load") -> tuple[subprocess.Popen, str]:
    """`makemore serve SERVE_ARGS --port 0` in its own process; returns it and the URL it printed. Its
    output goes to a file: uvicorn writes a line per request, which would fill an unread pipe."""
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "makemore", "serve", *serve_args, "--port", "0", "--device", "cpu"],
                                stdout=out, stderr=subprocess.STDOUT, text=True)
    for _ in range(600):  # "makemore: serving NAME at http://127.0.0.1:PORT/  (Ctrl-C stops)"
        for line in log.read_text().splitlines():
            if line.startswith("makemore: serving ") and " at http" in line:
                return proc, line.split(" at ")[1].split()[0]
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    sys.exit(f"{who}: the server did not start: {log.read_text().strip()[-500:]}")


def machine(gflops: float, busy: float) -> dict:
    """What the figures were measured on: they move with the machine's speed and its other work."""
    return {"cpus": os.cpu_count(), "gflops_fp32_matmul": gflops, "load_average_1min_before": round(busy, 2),
            "python": platform.python_version(), "torch": torch.__version__}


def write_result(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def summary(latencies: list[float]) -> dict:
    s = sorted(latencies)
    if not s:
        return {"requests": 0}
    return {"requests": len(s), "p50_ms": round(1000 * percentile(s, 50), 1), "p99_ms": round(1000 * percentile(s, 99), 1),
            "max_ms": round(1000 * s[-1], 1)}


async def load(url: str, model: str, names: list[str], requests: int, clients: int, score_share: float, seed: int) -> dict:
    rng = random.Random(seed)
    plan = [("score", {"model": model, "texts": [rng.choice(names)], "top": 5}) if rng.random() < score_share
            else ("sample", {"model": model, "n": 10, "seed": rng.randrange(2**31)}) for _ in range(requests)]
    results: dict[str, list[float]] = {"sample": [], "score": []}
    errors: dict[str, int] = {}
    next_request = 0

    async def client(http: httpx.AsyncClient):
        nonlocal next_request
        while next_request < len(plan):
            kind, body = plan[next_request]
            next_request += 1
            start = time.perf_counter()
            try:
                r = await http.post(f"api/{kind}", json=body)
                ok = r.status_code == 200
                why = f"HTTP {r.status_code}"
            except httpx.HTTPError as e:
                ok, why = False, type(e).__name__
            if ok:
                results[kind].append(time.perf_counter() - start)
            else:
                errors[why] = errors.get(why, 0) + 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        for kind, body in plan[:20]:  # warm up (not counted)
            (await http.post(f"api/{kind}", json=body)).raise_for_status()
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds = time.perf_counter() - start
    every = results["sample"] + results["score"]
    return {
        "requests": requests, "clients": clients, "seconds": round(seconds, 2),
        "requests_per_second": round(requests / seconds, 1),
        "errors": sum(errors.values()), "errors_by_kind": errors,
        "all": summary(every), "sample_n10": summary(results["sample"]), "score_explain": summary(results["score"]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, help="run directory to serve (trained there first when it is not a run yet)")
    p.add_argument("--train-seconds", type=float, default=60.0, help="training time when a run must be trained (default 60)")
    p.add_argument("--url", help="load a server already running on this machine instead (127.0.0.1, ::1 or localhost only)")
    p.add_argument("--model", help="with --url: the model name to ask for (default: the server's first)")
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--score-share", type=float, default=0.5, help="fraction of requests that are scores (default 0.5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    if not 1 <= args.requests <= 100_000 or not 1 <= args.clients <= 256:
        sys.exit("serve_load: --requests must be 1..100,000 and --clients 1..256 (a bounded load)")
    names = resolve_data("names").read_text(encoding="utf-8").split()

    gflops = machine_gflops()
    busy = os.getloadavg()[0]  # other work on this machine: the figures move with it
    with tempfile.TemporaryDirectory() as tmp:
        proc, served = None, {}
        if args.url:
            if not loopback(args.url):
                sys.exit(f"serve_load: --url must be this machine (127.0.0.1, ::1 or localhost), not {args.url}")
            url = args.url.rstrip("/") + "/"
        else:
            run = ensure_run(args.run, args.train_seconds, Path(tmp))
            proc, url = start_server([str(run)], Path(tmp) / "server.log")
        try:
            card = next(c for c in httpx.get(url + "api/models", timeout=30).json()["models"] if args.model in (None, c["name"]))
            served = {k: card[k] for k in ("name", "model", "params", "steps", "nll")}
            served["data"] = card["data"]["source"]
            figures = asyncio.run(load(url, card["name"], [n for n in names if len(n) <= card["max_len"] and set(n) <= set(card["vocab"])],
                                       args.requests, args.clients, args.score_share, args.seed))
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(30)
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "served": served,
        "mix": f"{1 - args.score_share:.0%} POST /api/sample n=10, {args.score_share:.0%} POST /api/score of one name with its explanation",
        **figures,
        "server": {"workers": Limits().workers, "torch_threads_per_worker": 1} if proc is not None else "given by --url",
        "machine": machine(gflops, busy),
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
