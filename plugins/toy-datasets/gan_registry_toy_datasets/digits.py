"""scikit-learn's bundled 1,797 handwritten 8x8 digits, upscaled: trains offline in minutes."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from gan_registry import DataSource, Dataset, IncompatibleError, hookimpl

HELDOUT_EVERY = 10  # every tenth digit is held out for evaluation
# A generator average with a half-life of 10,000 images (ramped up): classifier FID of mlp+gan 72.1 -> 24.7,
# dcgan+gan (1,000 steps) 13.2 -> 9.7, dcgan+wgan-gp (300 steps) 16.8 -> 13.7 (docs/quality-kit.md). `--ema 0` turns it off.
SUGGESTS = {"ema_half_life": 10_000}


@dataclass
class DigitsParams:
    size: int = field(default=32, metadata={"help": "image side in pixels (--image-size overrides)"})
    holdout: bool = field(
        default=True, metadata={"help": "keep every tenth digit out of training, for evaluation (false: train on all)"}
    )


def _images(size: int):
    import torch
    import torch.nn.functional as F

    pixels, _ = _digits()
    images = torch.as_tensor(pixels, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    return images * 2 - 1


def _labels():
    import torch

    return torch.tensor(_digits()[1], dtype=torch.int64)  # a copy: the cached array stays as read


@functools.lru_cache(maxsize=1)  # a run loads images and labels: one read of the file (0.1 s) serves both
def _digits():
    """(pixels (1797, 64), labels) from the file scikit-learn ships, read as its `load_digits` reads it.

    Importing sklearn costs ~1.4 s of every run's start-up; the file alone takes milliseconds. Where it is not
    where it has been since scikit-learn 0.x (an unusual install), `load_digits` reads it."""
    import gzip
    import importlib.util
    from pathlib import Path

    import numpy as np

    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path) as f:
                table = np.loadtxt(f, delimiter=",")
            return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data, bunch.target


def _split(size: int, heldout: bool, holdout: bool, labels: bool = False):
    """The loader of one split's images (or, with `labels`, of their digit labels)."""
    def load():
        import torch

        values = _labels() if labels else _images(size)
        if not holdout:
            return values
        in_heldout = torch.arange(len(values)) % HELDOUT_EVERY == 0
        return values[in_heldout if heldout else ~in_heldout]

    return load


def build(params: DigitsParams, context) -> DataSource:
    size = context.image_size or params.size
    if size < 8:
        raise IncompatibleError(f"digits need an image size of at least 8, got {size}")
    return DataSource(
        sample_shape=(1, size, size),
        value_range=(-1.0, 1.0),
        load=_split(size, heldout=False, holdout=params.holdout),
        load_heldout=_split(size, heldout=True, holdout=True),
        classes=tuple(str(d) for d in range(10)),
        load_labels=_split(size, heldout=False, holdout=params.holdout, labels=True),
        load_heldout_labels=_split(size, heldout=True, holdout=True, labels=True),
    )


@hookimpl
def register_datasets(register):
    register(Dataset(name="digits", summary="scikit-learn's 1,797 handwritten 8x8 digits, resized (offline)",
                     params=DigitsParams, factory=build, extractor="classifier", suggests=SUGGESTS))
