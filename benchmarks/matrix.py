"""The whole combination matrix at every cell's defaults: digits (classifier FID, precision, recall as a multiple of
the real-vs-real floor) and the 2D toys (mode coverage of the ring and the grid). A thin user of `gan matrix`.

    python benchmarks/matrix.py --out matrix-runs            # hours of CPU on a 2-core machine: run it in the background
    python benchmarks/matrix.py --out matrix-runs            # again after a kill: finished cells are kept

Prints each matrix's table (Markdown), ready for an issue note or the docs.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

MATRICES = {
    "digits": ["--dataset", "digits"],
    "toys": ["--dataset", "gaussians", "--dataset", "gaussians:layout=grid"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("matrix-runs"))
    parser.add_argument("--only", choices=sorted(MATRICES), action="append", help="one matrix (repeatable)")
    parser.add_argument("--workers", default=None, help="cells at once (default: what the cores allow)")
    args = parser.parse_args()
    for name in args.only or list(MATRICES):
        workers = ["--workers", args.workers] if args.workers else []
        command = [sys.executable, "-m", "gan_registry", "matrix", *MATRICES[name], *workers, "--out",
                   str(args.out / name)]
        print(f"## {name}\n\n$ {' '.join(command[2:])}\n", flush=True)
        result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        print(result.stdout, flush=True)
        if result.returncode != 0:
            raise SystemExit(result.returncode)


if __name__ == "__main__":
    main()
