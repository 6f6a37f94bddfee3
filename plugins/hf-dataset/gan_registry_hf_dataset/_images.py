"""Decoding a split's images with datasets' Image feature. Imports torch, torchvision, PIL and datasets: import
lazily."""
from __future__ import annotations

import os
import stat
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

import datasets
import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from gan_registry import UserError

from ._source import Split, words

BACKGROUND = (255, 255, 255, 255)
"""Transparent pixels are composited on this colour."""
SHOWN_BAD = 5
"""How many undecodable rows the warning names."""
ROWS_AT_ONCE = 256
"""Rows read from the Arrow files at a time, while decoding up front (their encoded bytes are in memory together)."""
_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
_TRANSPARENT = {"RGBA", "LA", "PA", "RGBa", "La"}


def as_channels(image: Image.Image, channels: int) -> Image.Image:
    """`image` as RGB (channels=3) or L (channels=1), with transparency composited on white and 16-bit values
    scaled (Pillow's own conversion would clip them at 255)."""
    if image.mode in _SIXTEEN_BIT:
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if image.mode in _TRANSPARENT or "transparency" in image.info:
        image = Image.alpha_composite(Image.new("RGBA", image.size, BACKGROUND), image.convert("RGBA"))
    return image.convert("L" if channels == 1 else "RGB")


def square(size: int) -> Callable[[Image.Image], torch.Tensor]:
    """Shorter side to `size`, the centre `size` x `size`, as a uint8 tensor (C, size, size)."""
    steps = [transforms.Resize(size, antialias=True), transforms.CenterCrop(size), transforms.PILToTensor()]
    return transforms.Compose(steps)


def _regular(path: str) -> None:
    """Raise unless a local image path is a regular file: opening a FIFO would wait for a writer forever."""
    if "://" in path or "::" in path:
        return  # a remote file: datasets fetches it
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise OSError(f"{path} is not a regular file")


def decode(value: Any, feature: Any, channels: int, to_square: Callable[[Image.Image], torch.Tensor]) -> torch.Tensor:
    """One row's image cell (encoded bytes, or a file's path) as uint8 (channels, size, size), decoded by
    datasets' Image feature (which also turns photos stored sideways upright); raises if it cannot be."""
    if value is None:
        raise ValueError("the row has no image")
    if value.get("bytes") is None and value.get("path"):
        _regular(value["path"])
    image = feature.decode_example(value)
    try:
        return to_square(as_channels(image, channels))
    finally:
        image.close()


class HFImages(torch.utils.data.Dataset):
    """A split's decodable images, decoded when asked for: uint8 (channels, size, size), mapped onto [-1, 1] by the
    engine. Picklable (the memory-mapped dataset pickles as its files' paths), for DataLoader workers."""

    def __init__(self, raw: Any, column: str, rows: np.ndarray, size: int, channels: int) -> None:
        self.raw, self.column, self.rows = raw, column, rows
        self.size, self.channels = size, channels
        self._decoding: Any = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> torch.Tensor:
        if self._decoding is None:
            self._decoding = datasets.Image(), square(self.size)
        row = int(self.rows[index])
        try:
            return decode(self.raw[row].column(self.column)[0].as_py(), self._decoding[0], self.channels,
                          self._decoding[1])
        except Exception as error:  # it was decodable when checked: the files changed since
            raise OSError(f"row {row} could not be decoded (it could when the run started): {error}") from error

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_decoding": None}


def _threads(asked: int) -> int:
    if asked:
        return asked
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def _decoded(job: Callable[[Any], Any], raw: Any, column: str, count: int, pool: Any) -> Iterable[Any]:
    """job(cell) for every row's image cell (a dict of bytes and path), in order: a few hundred rows read at a time,
    so that only their encoded bytes are in memory at once; decoded in the thread pool (PIL decodes without holding
    the GIL) where there is one."""
    for start in range(0, count, ROWS_AT_ONCE):
        cells = raw[start:start + ROWS_AT_ONCE].column(column).to_pylist()
        yield from pool.map(job, cells) if pool is not None else map(job, cells)


def _named(bad: list[tuple[int, str]]) -> str:
    more = f" and {len(bad) - SHOWN_BAD} more" if len(bad) > SHOWN_BAD else ""
    return f"row{'s' if len(bad) > 1 else ''} {', '.join(str(row) for row, _ in bad[:SHOWN_BAD])}{more}"


def load(split: Split, column: str, *, size: int, channels: int = 3, in_memory: str = "auto",
         max_memory_mb: int = 2048, threads: int = 0) -> tuple[Any, np.ndarray]:
    """The decodable images of `split` (one uint8 tensor (N, C, size, size), or an HFImages dataset) and the rows
    they are, in order. Every image is decoded here either way; undecodable rows are left out with one warning."""
    count = len(split.data)
    raw = split.data.select_columns([column]).with_format("arrow")  # cells as stored: nothing decoded yet
    keep = in_memory == "always" or (in_memory == "auto" and count * channels * size * size <= max_memory_mb * 2**20)
    feature, to_square = datasets.Image(), square(size)

    def job(value: Any) -> tuple[torch.Tensor | None, str | None]:
        try:
            return decode(value, feature, channels, to_square), None
        except Exception as error:  # undecodable: any decoder error, a decompression bomb, a missing file, ...
            return None, words(error)

    buffer = torch.empty((count, channels, size, size), dtype=torch.uint8) if keep else None
    good: list[int] = []
    bad: list[tuple[int, str]] = []
    workers = min(_threads(threads), count)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hf-decode") if workers > 1 else None
    try:
        for row, (image, error) in enumerate(_decoded(job, raw, column, count, pool)):
            if error is not None:
                bad.append((row, error))
                continue
            if buffer is not None:
                buffer[len(good)] = image
            good.append(row)
    finally:  # on Ctrl-C, or an error, do not decode the rest before stopping
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    if not good:
        raise UserError(f"no decodable images in {split.where}: {_named(bad)} of {count} could not be decoded"
                        f" (first: {bad[0][1]})")
    if bad:
        warnings.warn(f"dataset 'hf': skipped {len(bad)} undecodable image{'s' if len(bad) != 1 else ''} of {count}"
                      f" in {split.where}: {_named(bad)} (first: {bad[0][1]})", UserWarning, stacklevel=3)
    rows = np.asarray(good, dtype=np.int64)
    if buffer is not None:
        return buffer[: len(good)], rows
    return HFImages(raw, column, rows, size, channels), rows
