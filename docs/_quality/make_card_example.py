"""Remake docs/examples/ring-model/, the real export folder (model card, weights, pictures) that "Sharing a model"
shows, by training and exporting the run its commands name.

    OMP_NUM_THREADS=1 python docs/_quality/make_card_example.py

About half a minute on 2 CPU cores. The commands are those of docs/sharing.md; the run is seeded, so the weights,
values and pictures come out the same until the code changes (the wall time in the card does not).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "docs" / "examples" / "ring-model"
RUN = ["run", "--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "--steps", "1000", "--eval-every",
       "500", "--eval-metric", "mode-coverage", "--seed", "0", "--device", "cpu", "--out", "ring", "--no-progress"]


def gan(*args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "gan_registry", *args], cwd=cwd, check=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        gan(*RUN, cwd=Path(scratch))
        gan("export", "ring", "-o", "ring-model/", "--license", "mit", cwd=Path(scratch))
        gan("export", "--verify", "ring-model", cwd=Path(scratch))
        shutil.rmtree(FOLDER, ignore_errors=True)
        shutil.copytree(Path(scratch) / "ring-model", FOLDER)
    print(f"wrote {FOLDER}")


if __name__ == "__main__":
    main()
