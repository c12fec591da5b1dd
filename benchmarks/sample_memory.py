"""Peak memory of `makemore sample -n N`: the items are written as they are drawn, so N should not matter.

    python benchmarks/sample_memory.py                            # this checkout, N = 2,000,000
    python benchmarks/sample_memory.py --before /tmp/old/src      # and another checkout's src/ beside it

A counted bigram is fitted on the built-in names, then each case runs as its own process under
`/usr/bin/time -v` (Linux), which reports the maximum resident set size: `-n 10` (what the
interpreter and PyTorch take), `-n N` to stdout, `-n N --out FILE` and `-n N --unique` (which must
remember every item). With --before, every case runs with that src/ too, the two interleaved, and
the outputs are compared byte for byte. Results go to benchmarks/results/sample_memory.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
RESULTS = HERE / "results" / "sample_memory.json"


def measured(src: Path, args: list[str], out: Path) -> dict:
    """Peak RSS (MB), wall seconds and the output's sha256 of `python -m makemore ARGS` run with `src`."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    with open(out, "wb") as stdout:
        proc = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "makemore", *args], stdout=stdout,
                              stderr=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)[1])
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", proc.stderr)[1]
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(wall.split(":"))))
    written = Path(args[args.index("--out") + 1]) if "--out" in args else out
    return {"rss_mb": round(rss / 1024, 1), "seconds": round(seconds, 1),
            "sha256": hashlib.sha256(written.read_bytes()).hexdigest()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=2_000_000, help="items to sample (default 2,000,000)")
    p.add_argument("--before", type=Path, help="another checkout's src/ to measure beside this one")
    args = p.parse_args()
    sources = {"this": SRC, **({"before": args.before.resolve()} if args.before else {})}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = tmp / "bigram"
        subprocess.run([sys.executable, "-m", "makemore", "train", "--model", "bigram", "--out", str(run), "--quiet",
                        "--samples", "0"], check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(SRC)})
        n = str(args.n)
        cases = {"-n 10": ["-n", "10"], f"-n {n}": ["-n", n], f"-n {n} --out": ["-n", n, "--out", str(tmp / "items.txt"), "--force"],
                 f"-n {n} --unique": ["-n", n, "--unique"]}
        rows = []
        for case, extra in cases.items():
            for name, src in sources.items():  # interleaved: whatever else the machine does slows both alike
                result = measured(src, ["sample", str(run), "--seed", "0", *extra], tmp / "stdout.txt")
                rows.append({"case": case, "src": name, **result})
                print(f"{case:28s} {name:6s} {result['rss_mb']:8.1f} MB {result['seconds']:6.1f} s", flush=True)
    for case in cases:
        digests = {r["sha256"] for r in rows if r["case"] == case}
        if len(digests) > 1:
            print(f"note: {case} wrote different items with the two sources", flush=True)
    RESULTS.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "n": args.n, "python": sys.version.split()[0],
                                   "sources": {k: str(v) for k, v in sources.items()}, "rows": rows}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
