"""Time the up-front decode of a folder of small images, one thread against a pool.

    python plugins/folder-dataset/benchmarks/decode_speed.py [--count 2000] [--side 96] [--format png]

Writes the images to a temporary folder (random pixels, random sizes around --side), then
loads them in memory at --size with threads=1 and threads=0 (one per CPU), best of --repeat.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_registry_folder_dataset import _images


def write_images(folder: Path, count: int, side: int, fmt: str) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        h, w = (int(side * rng.uniform(0.75, 1.25)) for _ in range(2))
        # smooth-ish content, so PNG/JPEG sizes are realistic rather than incompressible noise
        small = rng.integers(0, 256, (max(h // 8, 1), max(w // 8, 1), 3), dtype=np.uint8)
        Image.fromarray(small).resize((w, h), Image.BILINEAR).save(folder / f"{i:05d}.{fmt}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--side", type=int, default=96)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--format", default="png", choices=["png", "jpg", "webp", "bmp"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        write_images(Path(tmp), args.count, args.side, args.format)
        print(f"{args.count} {args.format} images of about {args.side}px to {args.size}px; {os.cpu_count()} CPUs")
        results = {}
        for threads in (1, 0):
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                images = _images.load(tmp, size=args.size, in_memory="always", threads=threads)
                best = min(best, time.perf_counter() - start)
            results[threads] = images
            label = "1 thread" if threads == 1 else f"{_images._default_threads()} threads"
            print(f"  {label:>10}: {best:.3f} s  ({args.count / best:,.0f} images/s)")
        assert torch.equal(results[1], results[0])


if __name__ == "__main__":
    main()
