"""Mode coverage of each objective on the 2D toys (PacGAN protocol), beside PacGAN's published rows.

    python benchmarks/modes.py [--objectives gan,wgan,wgan-gp,hinge,lsgan] [--layouts ring,grid]
                               [--seeds 3] [--steps 3000] [-p KIND.PARAM=VALUE ...]

Each run is a real `gan run --arch mlp --dataset gaussians` followed by `gan eval --json`
(2,500 samples); the table shows the mean over seeds and the CPU seconds of one run.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

PUBLISHED = [  # PacGAN (Lin et al. 2018), tables 2 and 3: modes, high-quality %, reverse KL
    ("PacGAN4 (published)", "ring", 7.8, 95.9, None),
    ("PacGAN4 (published)", "grid", 24.8, 93.6, 0.04),
    ("GAN (published)", "ring", 6.3, None, None),
    ("GAN (published)", "grid", 17.3, None, None),
]


def _gan(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "gan_registry", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"gan {' '.join(args)} failed:\n{result.stderr}")
    return result


def run_once(objective: str, layout: str, seed: int, steps: int, params: list[str], root: Path) -> dict:
    out = root / f"{objective}-{layout}-{seed}"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    _gan("run", "--arch", "mlp", "--objective", objective, "--dataset", "gaussians", "-p", f"dataset.layout={layout}",
         *(a for p in params for a in ("-p", p)), "--steps", str(steps), "--seed", str(seed), "--device", "cpu",
         "--out", str(out), "--no-progress")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = json.loads(_gan("eval", str(out), "--metric", "mode-coverage", "--json").stdout)
    values = report["metrics"]["mode-coverage"]
    values["cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objectives", default="gan,wgan,wgan-gp,hinge,lsgan")
    parser.add_argument("--layouts", default="ring,grid")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("-p", dest="params", action="append", default=[], help="extra -p for every run")
    args = parser.parse_args()
    print(f"mlp on gaussians, {args.steps} generator steps, {args.seeds} seeds, extra: {' '.join(args.params) or '-'}")
    header = f"{'objective':<22}{'layout':<7}{'modes':>12}{'high quality %':>16}{'reverse KL':>12}{'CPU s/run':>11}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for objective in args.objectives.split(","):
            for layout in args.layouts.split(","):
                runs = [run_once(objective, layout, s, args.steps, args.params, Path(tmp)) for s in range(args.seeds)]
                mean = {k: sum(r[k] for r in runs) / len(runs) for k in ("modes_covered", "high_quality_percent",
                                                                         "reverse_kl", "cpu_s")}
                modes = f"{mean['modes_covered']:.1f}/{runs[0]['modes_total']}"
                print(f"{objective:<22}{layout:<7}{modes:>12}{mean['high_quality_percent']:>16.1f}"
                      f"{mean['reverse_kl']:>12.3f}{mean['cpu_s']:>11.0f}", flush=True)
    for name, layout, modes, quality, rkl in PUBLISHED:
        total = 8 if layout == "ring" else 25
        print(f"{name:<22}{layout:<7}{f'{modes}/{total}':>12}{quality if quality else '-':>16}"
              f"{rkl if rkl is not None else '-':>12}{'-':>11}")


if __name__ == "__main__":
    main()
