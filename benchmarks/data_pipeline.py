"""How fast do images reach the training loop, from each kind of dataset, against torchvision's ImageFolder?

    python benchmarks/data_pipeline.py [--count 20000] [--sizes 64 256] [--workers 1 2] [--batches 60]
        [--batch-size 64] [--folder DIR] [--keep]

Makes `--count` PNGs of 256 px (smooth noise, 2 classes) in a temporary folder (or reuses `--folder`), packs them
with `gan data pack` (array and shards) and saves them as a Hugging Face dataset, then, for each side and worker
count, times `--batches` batches of the engine's own `Batches` on the CPU (what `gan run` draws, converted to float
in [-1, 1]), after one warm-up batch:

- folder (in memory): decoded once up front into uint8, then indexed; `ready` is the up-front decode;
- folder (per batch): decoded again for every batch by DataLoader workers;
- packed array: memory-mapped uint8, indexed;
- packed shards: WebDataset tar shards streamed, PNGs decoded by `workers` threads;
- hf: the Hugging Face dataset, decoded up front;
- baseline: torchvision's ImageFolder + DataLoader (shuffle, Resize, CenterCrop, ToTensor, Normalize).

Prints images/s, the ratio to the baseline with the same workers, and the seconds to the first batch (`ready`:
building the source and drawing one batch). Then the peak resident memory of a process that reads an epoch of a
dataset 4x larger than the folder's `max_memory_mb`, streamed per batch, memory-mapped, or as shards.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def make_images(folder: Path, count: int, side: int = 256) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        small = rng.integers(0, 256, (side // 16, side // 16, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((side, side), Image.BILINEAR)
        image.save(folder / ("a" if i % 2 else "b") / f"{i:06d}.png", compress_level=1)


def gan(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "gan_registry", *map(str, args)], check=True, capture_output=True)


def make_hf(folder: Path, out: Path) -> None:
    from datasets import ClassLabel, Dataset, Features, Image

    files = sorted(folder.rglob("*.png"))
    labels = [0 if f.parent.name == "a" else 1 for f in files]
    features = Features({"image": Image(), "label": ClassLabel(names=["a", "b"])})
    Dataset.from_dict({"image": [str(f) for f in files], "label": labels}, features=features).save_to_disk(str(out))


def source(name: str, data_dir: Path, side: int, params: dict) -> object:
    from gan_registry import DataContext
    from gan_registry.plugins import load_registry

    registry = load_registry()
    dataset = registry.get("dataset", name)
    from gan_registry import params as params_mod

    values = params_mod.build(dataset.params, params, name)
    return dataset.factory(values, DataContext(data_dir=str(data_dir), image_size=side, registry=registry))


def engine_rate(data, batches: int, batch_size: int, workers: int) -> tuple[float, float]:
    from gan_registry.data import Batches

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = data.load()
        stream = Batches(loaded, batch_size, seed=0, device=torch.device("cpu"), workers=workers,
                         labels=data.load_labels() if data.load_labels else None, value_range=data.value_range)
        stream.next()
    ready = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
        batch = stream.next()
    assert batch.dtype == torch.float32
    rate = batches * batch_size / (time.perf_counter() - start)
    stream.close()
    return rate, ready


def baseline_rate(folder: Path, side: int, batches: int, batch_size: int, workers: int) -> tuple[float, float]:
    from torchvision import datasets, transforms

    start = time.perf_counter()
    transform = transforms.Compose([transforms.Resize(side), transforms.CenterCrop(side), transforms.ToTensor(),
                                    transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
    loader = torch.utils.data.DataLoader(datasets.ImageFolder(str(folder), transform=transform),
                                         batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True,
                                         persistent_workers=False)
    it = iter(loader)
    next(it)
    ready = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start), ready


def peak_rss(kind: str, data_dir: Path, side: int, max_mb: int) -> float:
    """Peak RSS (MB) of a fresh process reading one epoch (the process itself: not its DataLoader workers)."""
    code = f"""
import sys, warnings, torch
sys.path.insert(0, {str(HERE)!r})
from data_pipeline import source
from gan_registry.data import Batches
name, params = {kind!r}, {{}}
if name == "folder":
    params = {{"in_memory": "auto", "max_memory_mb": {max_mb}}}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    data = source(name, {str(data_dir)!r}, {side}, params)
    b = Batches(data.load(), 64, 0, torch.device("cpu"), workers=1, value_range=data.value_range)
    for _ in range(b.per_epoch):
        b.next()
    b.close()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, from the benchmark that started this process
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--folder", type=Path, help="Reuse this work folder (made if missing).")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder.")
    parser.add_argument("--no-rss", action="store_true", help="Skip the peak-memory rows.")
    parser.add_argument("--only", nargs="+", default=[], metavar="TEXT",
                        help="Measure only the sources whose label holds one of these (and the baseline).")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("GAN_REGISTRY_THREADS", "1")))
    work = args.folder or Path(tempfile.mkdtemp(prefix="data-pipeline-"))
    images = work / "images"
    try:
        if not images.is_dir():
            t = time.perf_counter()
            make_images(images, args.count)
            print(f"made {args.count} PNGs of 256 px in {time.perf_counter() - t:.0f} s", flush=True)
        rows = []
        for side in args.sizes:
            for layout in ("array", "shards"):
                packed = work / f"{layout}-{side}"
                if not packed.is_dir():
                    t = time.perf_counter()
                    gan("data", "pack", "--dataset", "folder", "--data-dir", images, "--image-size", side,
                        "--format", layout, "--shard-size", 2000, "--out", packed, "--no-progress")
                    print(f"packed {layout} at {side} px in {time.perf_counter() - t:.0f} s", flush=True)
            hf = work / "hf"
            if not hf.is_dir():
                make_hf(images, hf)
            for workers in args.workers:
                base, base_ready = baseline_rate(images, side, args.batches, args.batch_size, workers)
                rows.append((side, workers, "baseline: ImageFolder + DataLoader", base, base_ready, base))
                print(f"{side} px, {workers} worker(s), baseline: {base:,.0f} images/s", flush=True)
                cases = [
                    ("folder (in memory)", "folder", images, {"in_memory": "always", "threads": workers}),
                    ("folder (per batch)", "folder", images, {"in_memory": "never", "threads": workers}),
                    ("packed array", "packed", work / f"array-{side}", {}),
                    ("packed shards", "packed", work / f"shards-{side}", {"threads": workers}),
                    ("hf (in memory)", "hf", hf, {"in_memory": "always", "threads": workers}),
                ]
                for label, name, where, params in cases:
                    if args.only and not any(text in label for text in args.only):
                        continue
                    rate, ready = engine_rate(source(name, where, side, params), args.batches, args.batch_size,
                                              workers)
                    rows.append((side, workers, label, rate, ready, base))
                    print(f"{side} px, {workers} worker(s), {label}: {rate:,.0f} images/s", flush=True)
        print()
        print("| px | workers | source | images/s | vs baseline | ready (s) |")
        print("|---|---|---|---:|---:|---:|")
        for side, workers, label, rate, ready, base in rows:
            print(f"| {side} | {workers} | {label} | {rate:,.0f} | {rate / base:.2f}x | {ready:.1f} |")
        if not args.no_rss:
            side = args.sizes[-1]
            nbytes = args.count * 3 * side * side
            max_mb = max(1, nbytes // 4 // 2**20)
            print(f"\npeak RSS reading one epoch at {side} px ({nbytes / 2**20:,.0f} MB as uint8; the folder's"
                  f" max_memory_mb={max_mb}, a quarter of it):")
            for label, kind, where in (("folder (per batch)", "folder", images),
                                       ("packed array", "packed", work / f"array-{side}"),
                                       ("packed shards", "packed", work / f"shards-{side}")):
                print(f"  {label}: {peak_rss(kind, where, side, max_mb):,.0f} MB", flush=True)
        print(json.dumps({"count": args.count, "threads": torch.get_num_threads()}))
    finally:
        if not args.keep and not args.folder:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
