"""Reading a packed dataset: the memory-mapped array, or the shards as a `Stream`. Imports numpy and torch."""
from __future__ import annotations

import functools
import hashlib
import io
import itertools
import os
import random
import tarfile
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from gan_registry import Stream, UserError

from ._header import MAX_HEADER_BYTES, Header


class Location:
    """Where the packed files are: a local folder, or a URL WebDataset opens (shards only)."""

    def __init__(self, data_dir: str) -> None:
        self.text = data_dir
        self.remote = "://" in data_dir or data_dir.startswith("pipe:")
        self.folder = None if self.remote else Path(data_dir).expanduser()

    def describe(self, name: str) -> str:
        return f"{self.text.rstrip('/')}/{name}"

    def path(self, name: str) -> str:
        return str(self.folder / name) if self.folder is not None else self.describe(name)

    def read_header(self) -> bytes:
        if self.folder is not None:
            if not self.folder.is_dir():
                what = "is not a folder" if self.folder.exists() else "does not exist"
                raise UserError(f"--data-dir {self.text} {what}; give a folder written by `gan data pack --out`")
            try:
                with open(self.folder / "header.json", "rb") as f:
                    return f.read(MAX_HEADER_BYTES + 1)
            except OSError as error:
                raise UserError(f"{self.folder} has no readable header.json ({error.strerror}); is it a folder"
                                " written by `gan data pack`?") from None
        import webdataset

        try:
            with webdataset.gopen(self.describe("header.json"), "rb") as f:
                return f.read(MAX_HEADER_BYTES + 1)
        except Exception as error:  # noqa: BLE001 -- any transport's failure is the user's URL
            raise UserError(f"cannot read {self.describe('header.json')}: {error}") from None


def _check_files(where: Location, header: Header, verify: str) -> None:
    """Each local file exists and has the header's size (and digest, with verify=sha256)."""
    if where.folder is None or verify == "none":
        return
    for entry in header.files:
        path = where.folder / entry.name
        try:
            size = path.stat().st_size
        except OSError:
            raise UserError(f"{path} is missing; header.json lists it") from None
        if size != entry.bytes:
            raise UserError(f"{path} has {size:,} bytes, header.json states {entry.bytes:,}: truncated, or not the"
                            " file that was packed")
        if verify == "sha256" and _sha256(path) != entry.sha256:
            raise UserError(f"{path} is not the file that was packed: its sha256 differs from header.json's")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_npy(path: Path, mmap: bool) -> np.ndarray:
    try:  # allow_pickle=False: an object array in a crafted file is refused, never unpickled
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise UserError(f"{path} is not a NumPy array file gan data pack wrote: {error}") from None


class ArraySource:
    def __init__(self, where: Location, header: Header, verify: str) -> None:
        if where.folder is None:
            raise UserError(f"{where.text}: a packed array is memory-mapped from a local folder; pack it with"
                            " --format shards to stream it from a URL")
        self.folder, self.header, self.verify = where.folder, header, verify
        self.where = where

    @functools.cache
    def images(self) -> torch.Tensor:
        _check_files(self.where, self.header, self.verify)
        path = self.folder / "images.npy"
        array = _load_npy(path, mmap=True)
        expected = (self.header.count, *self.header.shape)
        if array.dtype != np.uint8 or array.shape != expected:
            raise UserError(f"{path} holds {array.dtype} images of shape {array.shape}; header.json states uint8"
                            f" {expected}")
        with warnings.catch_warnings():  # read-only memory map: the engine only ever reads batches out of it
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(array)

    @functools.cache
    def labels(self) -> torch.Tensor:
        self.images()
        path = self.folder / "labels.npy"
        labels = _load_npy(path, mmap=False)
        if labels.dtype != np.int64 or labels.shape != (self.header.count,):
            raise UserError(f"{path} holds {labels.dtype} of shape {labels.shape}; header.json states"
                            f" {self.header.count:,} int64 labels")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.header.classes)):
            raise UserError(f"{path} holds labels outside 0..{len(self.header.classes) - 1}, its classes")
        return torch.from_numpy(labels)


def _ordered(work, items: Iterator[Any], threads: int) -> Iterator[Any]:
    """work(item) for each item, in order, `threads` at a time (PIL decodes without the GIL)."""
    if threads <= 1:
        yield from map(work, items)
        return
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="packed-decode")
    pending: deque = deque()
    try:
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= 4 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:  # closed early (a run stops, or resumes elsewhere): decode nothing more
        pool.shutdown(wait=True, cancel_futures=True)


class ShardStream(Stream):
    """The shards, each process reading its own in an order drawn from (seed, epoch)."""

    def __init__(self, where: Location, header: Header, params: Any) -> None:
        self.where, self.header = where, header
        self.buffer = params.shuffle_buffer
        self.threads = params.threads or min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                             else os.cpu_count() or 1)
        self.verify = params.verify
        self._checked = False

    def __len__(self) -> int:
        return self.header.count

    def per_process(self, world: int) -> int:
        shards = self.header.files
        if len(shards) < world:
            raise UserError(f"{self.where.text} has {len(shards)} shard(s) for {world} processes; each reads its own:"
                            " pack it again with a smaller --shard-size")
        # Each process gets len // world shards or one more: the smallest that many is the least any reads.
        return sum(sorted(e.count for e in shards)[: len(shards) // world])

    def shards_of(self, seed: int, epoch: int, rank: int, world: int) -> list[Any]:
        order = torch.randperm(len(self.header.files), generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        return [self.header.files[i] for i in order[rank::world].tolist()]

    def read(self, *, seed: int, epoch: int, rank: int, world: int, skip: int = 0) -> Iterator[tuple[Any, Any]]:
        import webdataset

        self.images()
        shards = self.shards_of(seed, epoch, rank, world)
        raw = self._records(shards)
        if self.buffer > 1:
            rng = random.Random(f"{seed}:{epoch}:{rank}:{world}")
            raw = webdataset.shuffle(bufsize=self.buffer, initial=self.buffer, rng=rng)(raw)
        yield from _ordered(self._decode, itertools.islice(raw, skip, None), self.threads)

    def _records(self, shards: list[Any]) -> Iterator[dict[str, Any]]:
        """The raw records of `shards` in order, each shard's count checked against the header."""
        import webdataset

        for shard in shards:
            url = self.where.path(shard.name)
            seen = 0
            try:
                for record in webdataset.tarfile_samples([{"url": url}]):
                    key = record.get("__key__", "")
                    if not key.startswith(self.header.id + "-"):
                        raise UserError(f"{self.where.describe(shard.name)} holds {key!r}, not a sample of this packed"
                                        f" dataset (id {self.header.id}): a shard of another dataset mixed in?")
                    seen += 1
                    yield record
            except (tarfile.TarError, OSError, EOFError, ValueError) as error:
                raise UserError(f"{self.where.describe(shard.name)} could not be read after {seen} samples (truncated"
                                f" or not a tar file?): {error.args[0] if error.args else error}") from None
            if seen != shard.count:
                raise UserError(f"{self.where.describe(shard.name)} holds {seen:,} samples; header.json states"
                                f" {shard.count:,}")

    def _decode(self, record: dict[str, Any]) -> tuple[torch.Tensor, int | None]:
        from PIL import Image

        where = f"{record.get('__url__', '?')}: sample {record['__key__']}"
        data = record.get("png")
        if not isinstance(data, bytes):
            raise UserError(f"{where} has no .png image")
        try:
            with Image.open(io.BytesIO(data)) as image:
                size, mode = image.size, image.mode
                wanted = "RGB" if self.header.channels == 3 else "L"
                if size != (self.header.resolution,) * 2 or mode != wanted:
                    raise UserError(f"{where} is a {size[0]}x{size[1]} {mode} image; header.json states"
                                    f" {self.header.resolution} px {wanted}")
                pixels = np.asarray(image)
        except UserError:
            raise
        except Exception as error:  # noqa: BLE001 -- any decoder error: a damaged or crafted PNG
            raise UserError(f"{where} is not a readable PNG: {error}") from None
        tensor = torch.from_numpy(pixels.copy())
        tensor = tensor.permute(2, 0, 1) if tensor.ndim == 3 else tensor[None]
        if self.header.classes is None:
            return tensor, None
        try:
            label = int(record["cls"])
        except (KeyError, ValueError):
            raise UserError(f"{where} has no class label (.cls); header.json states classes") from None
        if not 0 <= label < len(self.header.classes):
            raise UserError(f"{where} has label {label}, outside its {len(self.header.classes)} classes")
        return tensor, label

    def images(self) -> ShardStream:
        if not self._checked:  # before training starts: a missing or cut shard is said at once
            _check_files(self.where, self.header, self.verify)
            self._checked = True
        return self

    def labels(self) -> torch.Tensor:
        """Labels in class order with the header's counts: what the class frequencies need; a stream's samples
        bring their own."""
        counts = torch.tensor(self.header.class_counts, dtype=torch.int64)
        return torch.repeat_interleave(torch.arange(len(counts)), counts)


def open_source(where: Location, header: Header, params: Any) -> Any:
    return ArraySource(where, header, params.verify) if header.layout == "array" else ShardStream(where, header, params)
