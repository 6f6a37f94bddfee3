"""Dataset 'hf': a Hugging Face `datasets` dataset, saved with `save_to_disk` (or a hub name, where there is a network).

`--data-dir` is a folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`, opened with
`datasets.load_from_disk` (Arrow files and JSON: nothing in it is unpickled); a name that is no folder here is
loaded from the hub with `datasets.load_dataset`. Images come from an `Image` column, decoded by `datasets`' own
Image feature (EXIF orientation included), converted to RGB (or grayscale with `channels=1`; transparent images
are composited on white first), resized so their shorter side is the image size and centre-cropped to a square.
Labels come from a `ClassLabel` column (its names are the classes) or an integer column (its distinct values,
sorted, are). The held-out split (`test`, else `validation`) is what metrics compare with.

Every image of a split is decoded once up front, by `threads` threads, so rows whose image cannot be decoded are
skipped (with one warning) before training starts, their labels with them. When the decoded images fit in
`max_memory_mb` they are kept in memory as one uint8 tensor (the engine maps each batch onto [-1, 1] on its
device); otherwise each image is decoded again when its batch is drawn, by the engine's DataLoader workers.

Building the source reads what the run needs described: the splits, the columns' types and the label column
(for the classes); the images are read by `load()`. Importing this module does not import torch or datasets.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Literal

from gan_registry import Dataset, DataSource, UserError, hookimpl

DEFAULT_SIZE = 64
NONE = ("", "none")
"""What `label=` and `heldout=` take for "no labels" and "no held-out split"."""
HELDOUT_SPLITS = ("test", "validation")
"""The splits `heldout=auto` looks for, in this order."""


@dataclass
class HFParams:
    image: str = field(default="image", metadata={"help": "the column of images (an Image feature)"})
    label: str = field(default="label", metadata={"help": (
        "the column of class labels (a ClassLabel, or integers: the sorted distinct values are the classes); none:"
        " unlabelled (the default 'label' is unlabelled where there is no such column)")})
    split: str = field(default="train", metadata={"help": "the split trained on (of a DatasetDict)"})
    heldout: str = field(default="auto", metadata={"help": (
        "the held-out split metrics compare with: auto (test, else validation, where there is one), a split's name,"
        " or none")})
    size: int = field(default=DEFAULT_SIZE, metadata={"help": "image side in pixels (--image-size overrides)"})
    channels: Literal[1, 3] = field(
        default=3, metadata={"help": "3: RGB; 1: grayscale (transparent images are composited on white first)"}
    )
    in_memory: Literal["auto", "always", "never"] = field(
        default="auto",
        metadata={
            "help": "auto: decode once and keep in memory if it fits in max_memory_mb, else decode per batch"
            " in DataLoader workers; always; never"
        },
    )
    max_memory_mb: int = field(
        default=2048,
        metadata={"help": "in_memory=auto: most memory the decoded images may take, kept as uint8 (N*C*size*size bytes)"},
    )
    threads: int = field(default=0, metadata={"help": "threads decoding the images up front (0: one per CPU)"})

    def __post_init__(self) -> None:
        if not self.image:
            raise ValueError("image must name a column")
        if not self.split:
            raise ValueError("split must name a split")
        if self.size < 1:
            raise ValueError(f"size must be at least 1, got {self.size}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels}")
        if self.max_memory_mb < 0 or self.threads < 0:
            raise ValueError("max_memory_mb and threads must be >= 0")


def build(params: HFParams, context) -> DataSource:
    if not context.data_dir:
        raise UserError(
            "dataset 'hf' needs --data-dir: a folder written by datasets' save_to_disk (or a Hugging Face hub"
            " dataset's name)"
        )
    from . import _source  # imports datasets (~1 s)

    opened = _source.open_data(context.data_dir, params)
    size = context.image_size or params.size

    def loader(split):
        @functools.lru_cache(maxsize=1)
        def decoded():
            from . import _images

            return _images.load(split, opened.image, size=size, channels=params.channels,
                                in_memory=params.in_memory, max_memory_mb=params.max_memory_mb, threads=params.threads)

        def labels():
            return _source.labels_of(split, opened, decoded()[1])

        return (lambda: decoded()[0]), labels

    load, load_labels = loader(opened.train)
    load_heldout = load_heldout_labels = None
    if opened.heldout is not None:
        load_heldout, load_heldout_labels = loader(opened.heldout)
    labelled = opened.classes is not None
    return DataSource(
        sample_shape=(params.channels, size, size),
        value_range=(-1.0, 1.0),
        load=load,
        load_heldout=load_heldout,
        classes=opened.classes,
        load_labels=load_labels if labelled else None,
        load_heldout_labels=load_heldout_labels if labelled and opened.heldout is not None else None,
    )


@hookimpl
def register_datasets(register):
    register(
        Dataset(
            name="hf",
            summary="a Hugging Face datasets dataset from --data-dir (save_to_disk) or the hub: images, ClassLabel labels",
            params=HFParams,
            factory=build,
        )
    )
