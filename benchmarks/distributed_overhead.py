"""What does the distributed path cost? The same `gan run` as a plain process and as a torchrun job.

    python benchmarks/distributed_overhead.py [--arch mlp] [--objective gan] [--dataset gaussians]
        [--batch-size 256] [--steps 600] [--repeats 3] [--device cpu] [--nproc 1]

Runs the command plainly and as `torchrun --standalone --nproc-per-node N` (N = --nproc), interleaved, `--repeats`
times each, and reads images/s from each run's own log (metrics.jsonl, the later half of its lines: start-up,
process-group set-up and warm-up are not counted). Prints the medians and the ratio distributed / plain: with
`--nproc 1` that is the overhead of the reductions and agreements on one rank (the design's goal: above 0.95);
with more processes it is the scaling (on one device per process).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def images_per_second(run_dir: Path) -> float:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["images_per_s"] for r in lines if r.get("images_per_s")]
    return statistics.median(speeds[len(speeds) // 2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mlp")
    parser.add_argument("--objective", default="gan")
    parser.add_argument("--dataset", default="gaussians")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--nproc", type=int, default=1)
    args = parser.parse_args()

    command = ["-m", "gan_registry", "run", "--arch", args.arch, "--objective", args.objective,
               "--dataset", args.dataset, "--batch-size", str(args.batch_size), "--steps", str(args.steps),
               "--log-every", str(max(1, args.steps // 10)), "--sample-every", str(10 * args.steps),
               "--device", args.device, "--no-progress"]
    ways = {"plain": [sys.executable],
            "distributed": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                            "--nproc-per-node", str(args.nproc)]}
    measured: dict[str, list[float]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            for name, launcher in ways.items():
                out = Path(folder) / f"{name}-{repeat}"
                done = subprocess.run([*launcher, *command, "--out", str(out)], capture_output=True, text=True)
                if done.returncode != 0:
                    sys.exit(f"{name} run failed:\n{done.stderr[-2000:]}")
                measured[name].append(images_per_second(out))
    plain, distributed = (statistics.median(measured[name]) for name in ways)
    print(f"{args.arch}/{args.objective}/{args.dataset}, batch {args.batch_size}, {args.device}, "
          f"{args.repeats} interleaved runs of {args.steps} steps each")
    print(f"plain:                  {plain:10.1f} images/s")
    print(f"torchrun, {args.nproc} process(es): {distributed:10.1f} images/s")
    print(f"ratio distributed/plain: {distributed / plain:.3f}")


if __name__ == "__main__":
    main()
