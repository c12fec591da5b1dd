"""Record the golden figures of tests/test_golden.py: a short, seeded run of every model.

    python tests/golden/record.py    # rewrites tests/golden/runs.json

Run it only when a change is meant to alter training results, and say so (with the figures
before and after) in the commit message: the golden test exists to catch changes that are not.
The file also names the machine and torch build that computed the figures ("machine"): information
for a person comparing results, which the test quotes when it fails but never acts on.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from golden_settings import SETTINGS, machine, run_model  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    out = {"machine": machine(), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SETTINGS:
            out["runs"][name] = run_model(name, Path(tmp))
            print(name, out["runs"][name]["final"])
    (HERE / "runs.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
