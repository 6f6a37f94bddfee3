"""Runs the built-in combinations on the bundled digits and writes docs/_quality/table.md and results.json.

    python docs/_quality/make_table.py [--out DIR]   # about 30 CPU-minutes on 2 cores; run it in the background

Every row is a real `gan run` then `gan eval` (classifier features, 2,000 samples, the training split); the floors
are digits' held-out images and uniform noise scored against the same reference.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
COMBINATIONS = [  # (arch, objective, steps or None for the dataset's default length)
    ("mlp", "gan", None),
    ("dcgan", "gan", 1000),
    ("dcgan", "hinge", 1000),
    ("dcgan", "lsgan", 1000),
    ("dcgan", "wgan-gp", 300),
    ("lenet", "gan", 1000),
    ("aae", "aae", 1000),
]
EVAL = ["--metric", "fid", "--metric", "kid", "--metric", "precision-recall", "--samples", "2000", "--json"]


def gan(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "gan_registry", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"gan {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def cpu_minutes() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) / 60


def row(name: str, command: str, report: dict, steps, minutes) -> dict:
    m = report["metrics"]
    return {"combination": name, "steps": steps, "cpu_minutes": minutes, "fid": m["fid"]["fid"],
            "kid": m["kid"]["kid_mean"], "precision": m["precision-recall"]["precision"],
            "recall": m["precision-recall"]["recall"], "command": command}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="quality-")))
    args = parser.parse_args()
    rows = []
    for arch, objective, steps in COMBINATIONS:
        run = args.out / f"{arch}-{objective}"
        length = ["--steps", str(steps)] if steps else []
        command = f"gan run --arch {arch} --objective {objective} --dataset digits {' '.join(length)} --seed 0".strip()
        before = cpu_minutes()
        gan("run", "--arch", arch, "--objective", objective, "--dataset", "digits", *length, "--seed", "0",
            "--no-progress", "--out", str(run))
        minutes = cpu_minutes() - before
        from gan_registry import checkpoint

        total = checkpoint.load(run / "checkpoints" / "last.pt")["step"]
        report = json.loads(gan("eval", str(run), *EVAL))
        rows.append(row(f"{arch} + {objective}", command, report, total, round(minutes, 1)))
        print(rows[-1], flush=True)
    noise = args.out / "noise"
    noise.mkdir(exist_ok=True)
    import torch
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for i in range(2000):
        Image.fromarray((torch.rand(32, 32, generator=g) * 255).to(torch.uint8).numpy()).save(noise / f"{i:04d}.png")
    floors = [("real vs real (digits held-out)", "gan eval --real digits --fake digits:heldout", ["digits:heldout"]),
              ("uniform noise", "gan eval --real digits --fake NOISE_FOLDER", [str(noise)])]
    for name, command, fake in floors:
        report = json.loads(gan("eval", "--real", "digits", "--fake", *fake, *EVAL))
        rows.append(row(name, command, report, "-", "-"))
    protocol = report["protocol"]
    (HERE / "results.json").write_text(json.dumps({"rows": rows, "protocol": protocol}, indent=2) + "\n")
    lines = ["| combination | steps | CPU min | FID | KID | precision | recall | command |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['combination']} | {r['steps']} | {r['cpu_minutes']} | {r['fid']:.1f} | {r['kid']:.3g} | "
                     f"{r['precision']:.3f} | {r['recall']:.3f} | `{r['command']}` |")
    (HERE / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
