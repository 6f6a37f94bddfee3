"""Images/s of the modern architectures against dcgan at the same image size, through the engine's loop.

    python benchmarks/architectures.py [--arch dcgan --arch stylegan2 --arch r3gan] [--size 32 --size 64]
        [--batch-size 32] [--steps 10] [--repeats 3] [--threads 1] [--device cpu] [-p arch.NAME=VALUE ...]

Each architecture at its own default widths trains `--steps` steps of the non-saturating loss with no penalty
(`objective.r1=0`, so the rows compare the networks, not the regularisers) on digits resized to each size; the
median of `--repeats` interleaved runs, so load on the machine falls on every row alike. Prints the parameter
counts, images/s and each row's ratio to dcgan at the same size (above 1.0: faster than dcgan).
"""
from __future__ import annotations

import argparse
import statistics

import torch
from engine_overhead import engine_rate  # this folder is on the path when a script here runs

from gan_registry._plan import Settings, make_plan
from gan_registry.plugins import load_registry

BASELINE = "dcgan"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", help=f"repeatable; default {BASELINE}, stylegan2, r3gan")
    parser.add_argument("--size", type=int, action="append", help="image side, repeatable; default 32 and 64")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("-p", dest="params", action="append", default=[], metavar="arch.NAME=VALUE")
    args = parser.parse_args()
    archs = args.arch or [BASELINE, "stylegan2", "r3gan"]
    if BASELINE not in archs:
        archs.insert(0, BASELINE)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    registry = load_registry()
    plans = {}
    for size in args.size or [32, 64]:
        for arch in archs:
            params: dict[str, dict[str, str]] = {"objective": {"r1": "0"}}
            for item in args.params:
                key, _, value = item.partition("=")
                slot, _, name = key.partition(".")
                params.setdefault(slot, {})[name] = value
            plans[arch, size] = make_plan(registry, Settings(
                arch=arch, objective="gan", dataset="digits", image_size=size, batch_size=args.batch_size,
                steps=args.steps, device=args.device, params=params))
    rates: dict[tuple[str, int], list[float]] = {key: [] for key in plans}
    for _ in range(args.repeats):
        for key, plan in plans.items():
            rates[key].append(engine_rate(plan, args.steps, device, warmup=2))  # 2: warm allocator and kernels
    print(f"digits, batch {args.batch_size}, {args.device}, {args.threads} thread(s), objective gan without R1, "
          f"{args.steps} steps, median of {args.repeats} interleaved")
    print(f"| arch | px | G params | D params | images/s | vs {BASELINE} |")
    print("|---|---|---|---|---|---|")
    for (arch, size), plan in plans.items():
        nets = plan.build_networks(torch.device("cpu"))
        counts = [sum(p.numel() for p in nets[role].parameters()) for role in ("generator", "discriminator")]
        median = statistics.median(rates[arch, size])
        ratio = median / statistics.median(rates[BASELINE, size])
        print(f"| {arch} | {size} | {counts[0]:,} | {counts[1]:,} | {median:.1f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
