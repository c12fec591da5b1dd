"""Make every picture the README shows, from a real run on the built-in names, into docs/img/.

    python scripts/make_readme_plots.py                    # the mlp's full 100,000 steps: a few minutes on a laptop CPU
    python scripts/make_readme_plots.py --max-steps 20000  # quicker, rougher pictures

It runs exactly the commands docs/plots.md shows (through makemore's own command line), so
each picture is what a user gets from that command.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from makemore.cli import main as makemore

ROOT = Path(__file__).resolve().parents[1]
IMG = Path("docs") / "img"  # from the repository root, where this script works


def run(*args: str) -> None:
    print("$ makemore " + " ".join(shlex.quote(a) for a in args), flush=True)
    status = makemore(list(args))
    if status != 0:
        sys.exit(f"makemore {args[0]} failed with status {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/readme-mlp", help="run directory to train into, from the repository root (replaced)")
    parser.add_argument("--max-steps", default=None, help="training steps (default: the mlp's own, 100,000)")
    args = parser.parse_args()
    os.chdir(ROOT)
    IMG.mkdir(parents=True, exist_ok=True)
    steps = ["--max-steps", args.max_steps] if args.max_steps else []

    # the model is named, not left to the registry's default, so the pictures do not change with it
    run("train", "--data", "names", "--model", "mlp", "--diagnostics", "--out", args.run, "--force", "--quiet", "--samples", "0", *steps)
    for kind in ("loss", "bigram", "embedding", "activations", "gradients", "updates"):
        run("plot", args.run, "--kind", kind, "--out", str(IMG / f"{kind}.png"))
    run("plot", args.run, "--kind", "activations", "--step", "0", "--out", str(IMG / "activations-init.png"))
    run("lr-find", "--data", "names", "--model", "mlp", "--quiet", "--out", str(IMG / "lr-find.png"))


if __name__ == "__main__":
    main()
