"""scikit-learn's bundled 1,797 handwritten 8x8 digits, upscaled: trains offline in minutes."""
from __future__ import annotations

from dataclasses import dataclass, field

from gan_registry import DataSource, Dataset, IncompatibleError, hookimpl

HELDOUT_EVERY = 10  # every tenth digit is held out for evaluation


@dataclass
class DigitsParams:
    size: int = field(default=32, metadata={"help": "image side in pixels (--image-size overrides)"})
    holdout: bool = field(
        default=True, metadata={"help": "keep every tenth digit out of training, for evaluation (false: train on all)"}
    )


def _images(size: int):
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    images = torch.as_tensor(load_digits().images, dtype=torch.float32)[:, None] / 16.0
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    return images * 2 - 1


def _split(size: int, heldout: bool, holdout: bool):
    def load():
        import torch

        images = _images(size)
        if not holdout:
            return images
        in_heldout = torch.arange(len(images)) % HELDOUT_EVERY == 0
        return images[in_heldout if heldout else ~in_heldout]

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
    )


@hookimpl
def register_datasets(register):
    register(Dataset(name="digits", summary="scikit-learn's 1,797 handwritten 8x8 digits, resized (offline)",
                     params=DigitsParams, factory=build))
