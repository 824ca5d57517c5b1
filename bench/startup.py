"""Start-up time of the command line against ``python -c "import torch"``.

    python bench/startup.py [--runs 7]      # prints JSON

Each command runs ``--runs`` times in a fresh interpreter (wall clock, median reported):
``python -c "import torch"``, ``sublinear --help``, ``sublinear check examples/mlp.sym`` and
``sublinear plan mlp --json``. The commands that only parse, check and plan never import torch,
so they should start in well under half the time of importing it (``ratio`` < 0.5).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def _cli() -> list[str]:
    """The installed console script, else the module (same code, one less wrapper)."""
    script = shutil.which("sublinear")
    return [script] if script else [sys.executable, "-m", "executor.app.cli"]


def timed(argv: list[str], runs: int) -> dict[str, float]:
    """Median, min and max wall seconds of ``runs`` runs of ``argv`` (must exit 0)."""
    seconds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        seconds.append(time.perf_counter() - t0)
    return {"median_s": round(statistics.median(seconds), 3), "min_s": round(min(seconds), 3),
            "max_s": round(max(seconds), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--runs", type=int, default=7, help="runs per command (default 7)")
    runs = ap.parse_args().runs
    cli = _cli()
    rows = {"import torch": timed([sys.executable, "-c", "import torch"], runs),
            "sublinear --help": timed([*cli, "--help"], runs),
            "sublinear check examples/mlp.sym": timed([*cli, "check", "examples/mlp.sym"],
                                                      runs),
            "sublinear plan mlp --json": timed([*cli, "plan", "mlp", "--json"], runs)}
    torch_s = rows["import torch"]["median_s"]
    for name, row in rows.items():
        row["ratio"] = round(row["median_s"] / torch_s, 3)
    print(json.dumps({"runs": runs, "python": sys.version.split()[0], "commands": rows},
                     indent=2))


if __name__ == "__main__":
    main()
