"""Dataset 'packed': images packed once by `gan data pack`, read without decoding or converting them up front.

`--data-dir` is the folder `gan data pack --out` wrote (or, for shards, a URL that WebDataset opens: `https://...`,
`pipe:...`), with its `header.json`:
- an array (`images.npy`, `labels.npy`) is memory-mapped: nothing is read before its batches are drawn, and each
  batch reaches the device as uint8 (the engine maps it onto [-1, 1] there);
- shards (`shard-000000.tar`, ...) are streamed: each process of a run reads its own shards, in an order drawn from
  the seed and the epoch, shuffled through a buffer; a resumed run reads what an uninterrupted one would have.

The header is checked against the files before anything trains: a header that lies about its counts, a shard
missing, truncated or swapped for another dataset's is refused in one line.

Importing this module does not import torch, numpy, PIL or webdataset.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gan_registry import Dataset, DataSource, UserError, hookimpl


@dataclass
class PackedParams:
    verify: Literal["size", "sha256", "none"] = field(
        default="size",
        metadata={"help": "before training, check local files against the header: size (fast), sha256 (reads"
                          " everything once), none"},
    )
    shuffle_buffer: int = field(
        default=1000, metadata={"help": "shards: samples held for shuffling within a process's stream (1: none)"}
    )
    threads: int = field(default=0, metadata={"help": "shards: threads decoding PNGs (0: up to 4, one per CPU)"})

    def __post_init__(self) -> None:
        if self.shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be at least 1, got {self.shuffle_buffer}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")


def build(params: PackedParams, context) -> DataSource:
    from . import _header, _sources

    if not context.data_dir:
        raise UserError("dataset 'packed' needs --data-dir: a folder written by `gan data pack --out` (or its URL)")
    where = _sources.Location(context.data_dir)
    header = _header.parse(where.read_header(), where.describe("header.json"))
    if context.image_size and context.image_size != header.resolution:
        raise UserError(f"{context.data_dir} was packed at {header.resolution} px, not --image-size"
                        f" {context.image_size}; pack it again with --image-size {context.image_size}")
    source = _sources.open_source(where, header, params)
    return DataSource(
        sample_shape=header.shape,
        value_range=(-1.0, 1.0),
        load=source.images,
        classes=header.classes,
        load_labels=source.labels if header.classes else None,
    )


@hookimpl
def register_datasets(register):
    register(
        Dataset(
            name="packed",
            summary="images packed by `gan data pack`: a memory-mapped uint8 array, or WebDataset shards streamed"
                    " per process",
            params=PackedParams,
            factory=build,
        )
    )
