"""How responsive `makemore serve` stays while it trains a model from the page.

    python benchmarks/serve_training.py                      # 20 s idle, then a 60-s job of the default model
    python benchmarks/serve_training.py --model mlp --seconds 30 --items 2000

It starts the server as a user would (`makemore serve --runs TMP --port 0`, in its own process,
serving the bundled model), then one client asks `POST /api/sample` for n=10 items again and
again, as a person at the page would: first with the server idle, then while a job posted to
/api/train trains on the first `--items` names of names.txt. It reports p50/p99/max latency of
both phases and the job's steps, and writes them to benchmarks/results/serve_training.json with
the machine's load average beside them. Everything runs on one machine, so the figures move with
whatever else it is running.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

from makemore.data import resolve_data

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "serve_training.json"
sys.path.insert(0, str(HERE))
from models import machine_gflops  # noqa: E402  (benchmarks/models.py)
from serve_load import machine, start_server, summary, write_result  # noqa: E402  (benchmarks/serve_load.py)


def sample_until(http: httpx.Client, done, seconds: float | None = None) -> list[float]:
    """Latencies of sample requests, one at a time, until `done()` (or for `seconds`)."""
    latencies, began, seed = [], time.monotonic(), 0
    while not done() and (seconds is None or time.monotonic() - began < seconds):
        seed += 1
        start = time.perf_counter()
        http.post("api/sample", json={"n": 10, "seed": seed}).raise_for_status()
        latencies.append(time.perf_counter() - start)
    return latencies


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="the model the job trains (default: makemore train's)")
    p.add_argument("--seconds", type=float, default=60.0, help="the job's time budget (default 60)")
    p.add_argument("--items", type=int, default=5000, help="names the job trains on (default 5,000)")
    p.add_argument("--idle", type=float, default=20.0, help="seconds of requests before the job (default 20)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    names = resolve_data("names").read_text(encoding="utf-8").split()[:args.items]
    gflops, busy = machine_gflops(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(["--runs", str(Path(tmp) / "runs"), "--train-seconds", "3600"], Path(tmp) / "server.log",
                                 "serve_training")
        try:
            with httpx.Client(base_url=url, timeout=60) as http:
                sample_until(http, lambda: False, 2.0)  # warm up (not counted)
                idle = sample_until(http, lambda: False, args.idle)
                body = {"items": names, "name": "job", "time_budget": args.seconds} | ({"model": args.model} if args.model else {})
                job = http.post("api/train", json=body).json()["job"]
                state = {}

                def ended() -> bool:
                    state.update(http.get(f"api/jobs/{job}").json())
                    return state["state"] in ("done", "failed", "cancelled")

                during = sample_until(http, ended)
        finally:
            proc.terminate()
            proc.wait(60)
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "requests": "POST /api/sample n=10 from the bundled model, one client, one request at a time",
        "job": {k: state.get(k) for k in ("state", "step", "seconds", "val_nll", "error")} | {
            "model": args.model or "default", "items": len(names), "time_budget": args.seconds},
        "idle": summary(idle),
        "during_training": summary(during),
        "server": "makemore serve: 2 inference workers of 1 torch thread each; the job trains on 1 thread of its own",
        "machine": machine(gflops, busy),
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
