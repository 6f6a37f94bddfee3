"""How fast does each feature extractor turn images into features, through the engine and in a plain loop?

    python benchmarks/extractors.py [--images 2000] [--inception-images 32] [--device cpu]

Prints images/s per extractor: the engine's batched path (`Evaluator.features`: [0, 1] floats in, inference mode,
batches of 250) and a plain loop calling the same network on the same batches, with their ratio (engine / plain).
Inception-v3 runs with a weights file of its real architecture and random weights (no download here); its speed
does not depend on the weights.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from gan_registry import load_plugins
from gan_registry.evaluation import Evaluator, ImageSet, reference_of


def rate(fn, images: torch.Tensor) -> float:
    fn(images[:8])  # warm-up
    start = time.perf_counter()
    fn(images)
    return len(images) / (time.perf_counter() - start)


def measure(name: str, evaluator: Evaluator, images: torch.Tensor) -> None:
    built = evaluator.built_extractor()

    def engine(x):
        evaluator.features(ImageSet(x, (0.0, 1.0), "benchmark"))

    def plain(x):
        with torch.inference_mode():
            for start in range(0, len(x), 250):
                built.extract(x[start:start + 250])

    e, p = rate(engine, images), rate(plain, images)
    print(f"{name:14s} {len(images):6d} images  engine {e:9.1f} images/s  plain {p:9.1f} images/s  ratio {e / p:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--inception-images", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    registry = load_plugins()
    dataset = registry.get("dataset", "digits")
    params = dataset.default_params()
    from gan_registry import DataContext

    reference = reference_of(dataset, params, dataset.factory(params, DataContext()), None)
    images = torch.rand(args.images, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    classifier = Evaluator.choose(registry, ["fid"], {}, "classifier", reference, device=args.device)
    measure("classifier", classifier, images.to(args.device))

    from gan_registry_image_metrics.inception import WEIGHTS_FILE, write_random_weights

    with tempfile.TemporaryDirectory() as folder:
        weights = write_random_weights(Path(folder) / WEIGHTS_FILE)
        inception = Evaluator.choose(registry, ["fid"], {"extractor": {"weights": str(weights)}}, "inception-v3",
                                     reference, device=args.device)
        measure("inception-v3", inception, images[:args.inception_images].to(args.device))


if __name__ == "__main__":
    main()
