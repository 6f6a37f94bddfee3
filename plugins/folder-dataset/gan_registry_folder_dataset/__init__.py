"""Dataset 'folder': your own images from a directory given by --data-dir.

A flat folder, or one with (class) subfolders, searched recursively for .jpg, .jpeg, .png,
.webp and .bmp files (any case; hidden files and folders are skipped), in sorted path
order. Each image is converted to RGB (or grayscale with `channels=1`; transparent images
are composited on white first), resized so its shorter side is the image size, and
centre-cropped to a square, in [-1, 1].

Every file is decoded once up front, so unreadable or truncated files, and FIFOs or devices
named like images, are skipped (with one warning) before training starts, decoded by `threads` threads (with a
progress bar on a terminal for 2,000 images or more). When the
decoded images fit in `max_memory_mb` they are kept in memory as one uint8 tensor (the engine
maps each batch onto [-1, 1] on its device); otherwise each image is decoded again when its batch
is drawn, by the engine's DataLoader workers.

Importing this module does not import torch, torchvision or PIL.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Literal

from gan_registry import Dataset, DataSource, UserError, hookimpl

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
DEFAULT_SIZE = 64


@dataclass
class FolderParams:
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
        if self.size < 1:
            raise ValueError(f"size must be at least 1, got {self.size}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels}")
        if self.max_memory_mb < 0 or self.threads < 0:
            raise ValueError("max_memory_mb and threads must be >= 0")


def _load(data_dir: str, size: int, params: FolderParams):
    """The images and the paths of those that could be read, in the order of the images."""
    from . import _images

    return _images.load(
        data_dir,
        size=size,
        channels=params.channels,
        in_memory=params.in_memory,
        max_memory_mb=params.max_memory_mb,
        threads=params.threads,
        with_paths=True,
    )


def class_folders(data_dir: str) -> tuple[str, ...] | None:
    """The class names: the subfolders of `data_dir`, where every image lies in one (else None, unlabelled)."""
    root = os.path.expanduser(data_dir)
    try:
        entries = [e for e in os.scandir(root) if not e.name.startswith(".")]
    except OSError:
        return None  # not there (yet): a run can still be rebuilt to sample from it
    if any(e.is_file() and os.path.splitext(e.name)[1].lower() in EXTENSIONS for e in entries):
        return None
    folders = sorted(e.name for e in entries if e.is_dir())
    return tuple(folders) or None


def build(params: FolderParams, context) -> DataSource:
    if not context.data_dir:
        raise UserError(
            "dataset 'folder' needs --data-dir DIR: a folder of images"
            f" ({', '.join(EXTENSIONS)}), flat or in class subfolders"
        )
    size = context.image_size or params.size
    # The folder itself is read in load(): a run's networks can be rebuilt (gan sample)
    # from its settings even where its images are no longer.
    loaded = functools.lru_cache(maxsize=1)(functools.partial(_load, context.data_dir, size, params))
    classes = class_folders(context.data_dir)

    def labels():
        from . import _images

        return _images.labels_of(context.data_dir, loaded()[1], classes)

    return DataSource(
        sample_shape=(params.channels, size, size),
        value_range=(-1.0, 1.0),
        load=lambda: loaded()[0],
        classes=classes,
        load_labels=labels if classes else None,
    )


@hookimpl
def register_datasets(register):
    register(
        Dataset(
            name="folder",
            summary="your own images from --data-dir (jpg/png/webp/bmp, class subfolders too), centre-cropped",
            params=FolderParams,
            factory=build,
        )
    )
