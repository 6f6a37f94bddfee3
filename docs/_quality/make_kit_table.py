"""Measures each switch of the quality kit on the bundled digits, and the Stacked-digits mode coverage, and writes
docs/_quality/kit.md and kit.json.

    python docs/_quality/make_kit_table.py [--out DIR] [--jobs 2] [--only NAME ...]   # about 45 minutes on 2 cores

Every row is a real `gan run` (one torch thread, `--jobs` runs at a time) then `gan eval` on the same protocol as
table.md: classifier features, 2,000 generated samples, the training split as reference; Stacked rows are scored
by `stacked-modes` on 26,000 samples (the VEEGAN/PacGAN protocol). CPU minutes are the run's own (user + system).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).parent
FID = ["--metric", "fid", "--metric", "precision-recall", "--samples", "2000", "--json"]
MODES = ["--metric", "stacked-modes", "--samples", "26000", "--json"]
DIGITS = ["--dataset", "digits", "--seed", "0"]
STACKED = ["--dataset", "stacked", "--seed", "0"]
EMA = ["--ema-half-life", "10000"]

ROWS = [  # (name, the switch it shows, gan run arguments, eval arguments)
    ("mlp+gan", "defaults", ["--arch", "mlp", "--objective", "gan", *DIGITS], FID),
    ("mlp+gan", "--ema-half-life 10000", ["--arch", "mlp", "--objective", "gan", *DIGITS, *EMA], FID),
    ("dcgan+gan", "defaults", ["--arch", "dcgan", "--objective", "gan", *DIGITS, "--steps", "1000"], FID),
    ("dcgan+gan", "--ema-half-life 10000", ["--arch", "dcgan", "--objective", "gan", *DIGITS, "--steps", "1000", *EMA],
     FID),
    ("dcgan+gan", "-p discriminator.spectral_norm=true", ["--arch", "dcgan", "--objective", "gan", *DIGITS, "--steps",
                                                          "1000", "-p", "discriminator.spectral_norm=true"], FID),
    ("dcgan+gan", "-p objective.r1=0.1", ["--arch", "dcgan", "--objective", "gan", *DIGITS, "--steps", "1000", "-p",
                                          "objective.r1=0.1"], FID),
    ("dcgan+gan", "--augment diffaugment", ["--arch", "dcgan", "--objective", "gan", *DIGITS, "--steps", "1000",
                                            "--augment", "diffaugment"], FID),
    ("dcgan+gan", "--augment diffaugment -p augment.target=0.6",
     ["--arch", "dcgan", "--objective", "gan", *DIGITS, "--steps", "1000", "--augment", "diffaugment", "-p",
      "augment.target=0.6"], FID),
    ("dcgan+rpgan", "defaults (R1 = R2 = 0.1)", ["--arch", "dcgan", "--objective", "rpgan", *DIGITS, "--steps", "1000"],
     FID),
    ("dcgan+rpgan", "--ema-half-life 10000", ["--arch", "dcgan", "--objective", "rpgan", *DIGITS, "--steps", "1000",
                                              *EMA], FID),
    ("dcgan+wgan-gp", "defaults", ["--arch", "dcgan", "--objective", "wgan-gp", *DIGITS, "--steps", "300"], FID),
    ("dcgan+wgan-gp", "--ema-half-life 10000", ["--arch", "dcgan", "--objective", "wgan-gp", *DIGITS, "--steps", "300",
                                                *EMA], FID),
    ("stacked dcgan+gan", "defaults", ["--arch", "dcgan", "--objective", "gan", *STACKED, "--steps", "1000"], MODES),
    ("stacked dcgan+hinge", "defaults", ["--arch", "dcgan", "--objective", "hinge", *STACKED, "--steps", "1000"], MODES),
    ("stacked dcgan+wgan-gp", "defaults", ["--arch", "dcgan", "--objective", "wgan-gp", *STACKED, "--steps", "300"],
     MODES),
    ("stacked dcgan+rpgan", "defaults", ["--arch", "dcgan", "--objective", "rpgan", *STACKED, "--steps", "1000"], MODES),
]


def measure(out: Path, name: str, switch: str, run_args: list[str], eval_args: list[str]) -> dict:
    folder = out / f"{name}-{switch}".replace(" ", "_").replace("/", "_").replace("=", "-")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "gan_registry", "run", *run_args, "--no-progress", "--out",
                                str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    err = process.stderr.read()
    if process.returncode != 0:
        return {"combination": name, "switch": switch, "error": err[-500:]}
    wall = time.perf_counter() - started
    result = subprocess.run([sys.executable, "-m", "gan_registry", "eval", str(folder), *eval_args],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if result.returncode != 0:
        return {"combination": name, "switch": switch, "error": result.stderr[-500:]}
    metrics = json.loads(result.stdout)["metrics"]
    row = {"combination": name, "switch": switch, "cpu_minutes": round((usage.ru_utime + usage.ru_stime) / 60, 1),
           "wall_minutes": round(wall / 60, 1), "command": "gan run " + " ".join(run_args), "run": str(folder)}
    if "fid" in metrics:
        row.update(fid=metrics["fid"]["fid"], precision=metrics["precision-recall"]["precision"],
                   recall=metrics["precision-recall"]["recall"])
    if "stacked-modes" in metrics:
        row.update(modes=metrics["stacked-modes"]["modes"], kl=metrics["stacked-modes"]["kl"])
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="kit-")))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="combination names to run (default: all)")
    parser.add_argument("--switch", nargs="*", help="and of those, only these switches; other rows of kit.json stay")
    args = parser.parse_args()
    rows = [r for r in ROWS if (not args.only or r[0] in args.only) and (not args.switch or r[1] in args.switch)]
    # The floor, on the same protocol; it also trains and caches the classifier once, before the runs share it.
    floor = subprocess.run([sys.executable, "-m", "gan_registry", "eval", "--real", "digits", "--fake", "digits:heldout",
                            *FID], capture_output=True, text=True, check=True)
    metrics = json.loads(floor.stdout)["metrics"]
    print(json.dumps({"floor_fid": metrics["fid"]["fid"]}), flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda r: measure(args.out, *r), rows))
    kept = json.loads((HERE / "kit.json").read_text())["rows"] if (HERE / "kit.json").is_file() else []
    new = {(r["combination"], r["switch"]): r for r in results}
    merged = [new.pop((r["combination"], r["switch"]), r) for r in kept] + list(new.values())
    (HERE / "kit.json").write_text(json.dumps({"floor_fid": metrics["fid"]["fid"], "rows": merged}, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
