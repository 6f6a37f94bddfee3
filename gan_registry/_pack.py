"""`gan data pack`: any image dataset the registry knows, prepared once as uint8 for fast reading at scale.

Two forms, both in a folder with a `header.json` that states what is in it (read by the `packed` dataset):
- `array`: `images.npy` (N, C, S, S) uint8 and `labels.npy` (N,) int64, standard NumPy files that are memory-mapped
  when read: nothing is decoded or converted to float up front;
- `shards`: WebDataset tar files of `shard_size` samples each (`<key>.png`, `<key>.cls`), for streaming from shared
  or object storage, each process of a run reading its own shards.

The folder is written under a temporary name and renamed when complete: a pack that fails leaves nothing behind.

Layer: services and duties (docs/architecture.md).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tarfile
import uuid
import warnings
from pathlib import Path
from typing import Any, Iterator

from . import params as params_mod
from ._components import DataContext, Stream
from ._files import fsync_dir
from ._registry import Registry
from ._version import __version__
from .errors import UserError
from .plugins import blame

FORMAT = "gan-registry-packed/1"
HEADER = "header.json"
CHUNK = 256
"""Samples converted and written at a time."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_entry(path: Path) -> dict[str, Any]:
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": sha256_of(path)}


def as_uint8(images: Any, value_range: tuple[float, float] | None) -> Any:
    """Samples as uint8 images, 0 to 255: uint8 ones as they are, floats mapped from their value range."""
    import torch

    if images.dtype == torch.uint8:
        return images
    lo, hi = value_range if value_range is not None else (float(images.min()), float(images.max()))
    return ((images.float() - lo) * (255 / (hi - lo))).round_().clamp_(0, 255).to(torch.uint8)


def _chunks(loaded: Any, labels: Any) -> Iterator[tuple[Any, Any]]:
    """(images, labels) of at most CHUNK samples each, in the dataset's order (a stream's first epoch)."""
    import torch

    if isinstance(loaded, Stream):
        pairs: list[tuple[Any, Any]] = []
        for pair in loaded.read(seed=0, epoch=0, rank=0, world=1):
            pairs.append(pair)
            if len(pairs) == CHUNK:
                yield _stacked(pairs)
                pairs = []
        if pairs:
            yield _stacked(pairs)
        return
    if isinstance(loaded, torch.Tensor):
        for start in range(0, len(loaded), CHUNK):
            yield loaded[start:start + CHUNK], None if labels is None else labels[start:start + CHUNK]
        return
    loader = torch.utils.data.DataLoader(loaded, batch_size=CHUNK, num_workers=min(4, os.cpu_count() or 1))
    start = 0
    for batch in loader:
        batch = batch[0] if isinstance(batch, (list, tuple)) else batch
        yield batch, None if labels is None else labels[start:start + len(batch)]
        start += len(batch)


def _stacked(pairs: list[tuple[Any, Any]]) -> tuple[Any, Any]:
    import torch

    labels = [label for _, label in pairs]
    return (torch.stack([torch.as_tensor(x) for x, _ in pairs]),
            None if None in labels else torch.tensor(labels, dtype=torch.int64))


class _Progress:
    def __init__(self, total: int, shown: bool) -> None:
        self.bar = None
        if shown:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", dynamic_ncols=True, file=sys.stderr, desc="packing")

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _write_array(folder: Path, chunks: Iterator[tuple[Any, Any]], count: int, shape: tuple[int, ...],
                 labelled: bool, value_range: Any, progress: _Progress) -> dict[str, Any]:
    import numpy as np

    images = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8, shape=(count, *shape))
    labels = np.lib.format.open_memmap(folder / "labels.npy", mode="w+", dtype=np.int64, shape=(count,)) \
        if labelled else None
    at = 0
    for batch, batch_labels in chunks:
        images[at:at + len(batch)] = as_uint8(batch, value_range).numpy()
        if labels is not None:
            labels[at:at + len(batch)] = batch_labels.numpy()
        at += len(batch)
        progress.update(len(batch))
    if at != count:
        raise UserError(f"the dataset gave {at} samples, not the {count} it stated; nothing was packed")
    images.flush()
    del images
    files = [_file_entry(folder / "images.npy")]
    if labels is not None:
        labels.flush()
        del labels
        files.append(_file_entry(folder / "labels.npy"))
    return {"layout": "array", "files": files}


def _write_shards(folder: Path, chunks: Iterator[tuple[Any, Any]], count: int, shard_size: int, key_prefix: str,
                  value_range: Any, progress: _Progress) -> dict[str, Any]:
    import webdataset

    shards: list[dict[str, Any]] = []
    labels: list[int] = []
    writer = None
    index = 0
    try:
        for batch, batch_labels in chunks:
            pixels = as_uint8(batch, value_range).permute(0, 2, 3, 1).numpy()  # (N, S, S, C): what PIL encodes
            for i in range(len(pixels)):
                if index % shard_size == 0:
                    if writer is not None:
                        writer.close()
                    name = f"shard-{len(shards):06d}.tar"
                    shards.append({"name": name, "count": 0})
                    # plain ustar headers, mtime 0: a float mtime would add a PAX header to every member, and
                    # parsing headers is half of what reading a shard costs
                    writer = webdataset.TarWriter(str(folder / name), mtime=0, format=tarfile.USTAR_FORMAT)
                image = pixels[i] if pixels.shape[-1] == 3 else pixels[i, :, :, 0]
                sample = {"__key__": f"{key_prefix}-{index:09d}", "png": image}
                if batch_labels is not None:
                    sample["cls"] = int(batch_labels[i])
                    labels.append(sample["cls"])
                writer.write(sample)
                shards[-1]["count"] += 1
                index += 1
            progress.update(len(pixels))
    finally:
        if writer is not None:
            writer.close()
    if index != count:
        raise UserError(f"the dataset gave {index} samples, not the {count} it stated; nothing was packed")
    for shard in shards:
        shard.update({k: v for k, v in _file_entry(folder / shard["name"]).items() if k != "name"})
    return {"layout": "shards", "shards": shards, "labels": labels}


def _labels_written(folder: Path, written: dict[str, Any]) -> list[int]:
    import numpy as np

    if written["layout"] == "array":
        return np.load(folder / "labels.npy", allow_pickle=False).tolist()
    return written["labels"]


def pack(registry: Registry, dataset_name: str, dataset_params: dict[str, Any], out: Path, *,
         data_dir: str | None = None, image_size: int | None = None, layout: str = "array",
         shard_size: int = 1000, progress: bool = True) -> dict[str, Any]:
    """Pack a dataset's training split into `out` (a new folder); returns its header."""
    if layout not in ("array", "shards"):
        raise UserError(f"--format must be array or shards, got {layout!r}")
    if shard_size < 1:
        raise UserError(f"--shard-size must be at least 1, got {shard_size}")
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out} exists and is not an empty folder; packing writes a new one")
    dataset = registry.get("dataset", dataset_name)
    values = params_mod.build(dataset.params, dataset_params, f"dataset '{dataset.name}'")
    with blame(dataset, "describing its data"):
        data = dataset.factory(values, DataContext(data_dir=data_dir, image_size=image_size, registry=registry))
    shape = tuple(data.sample_shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or shape[1] != shape[2]:
        raise UserError(f"gan data pack packs square images of 1 or 3 channels; dataset '{dataset.name}' has"
                        f" samples of shape {shape}")
    with warnings.catch_warnings(record=True) as skipped:  # said once, after the progress bar
        warnings.simplefilter("always")
        with blame(dataset, "loading its data"):
            loaded = data.load()
            labels = data.load_labels() if data.load_labels is not None and not isinstance(loaded, Stream) else None
    classes = list(data.classes) if data.classes and (labels is not None or isinstance(loaded, Stream)) else None
    count = len(loaded)
    key_prefix = uuid.uuid4().hex[:16]
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.parent / f".{out.name}.packing-{key_prefix}"
    temporary.mkdir()
    bar = _Progress(count, progress)
    try:
        chunks = _chunks(loaded, labels)
        if layout == "array":
            written = _write_array(temporary, chunks, count, shape, classes is not None, data.value_range, bar)
        else:
            written = _write_shards(temporary, chunks, count, shard_size, key_prefix, data.value_range, bar)
        bar.close()
        counts = None
        if classes is not None:
            counts = [0] * len(classes)
            for label in _labels_written(temporary, written):
                counts[label] += 1
        written.pop("labels", None)
        header = {
            "format": FORMAT,
            "id": key_prefix,
            "images": {"count": count, "channels": shape[0], "resolution": shape[1], "dtype": "uint8"},
            "classes": classes,
            "class_counts": counts,
            "source": {"dataset": dataset.name, "params": params_mod.as_dict(values), "split": "train",
                       "image_size": image_size,
                       "data_dir": os.path.abspath(os.path.expanduser(data_dir)) if data_dir else None,
                       "value_range": list(data.value_range) if data.value_range else None,
                       "distribution": dataset.origin.distribution if dataset.origin else None,
                       "packed_by": f"gan-registry {__version__}"},
            **written,
        }
        files = written.get("files") or written["shards"]
        header["checksum"] = hashlib.sha256("".join(f["sha256"] for f in files).encode()).hexdigest()
        (temporary / HEADER).write_text(json.dumps(header, indent=2) + "\n")
        fsync_dir(temporary)
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(temporary, out)
    except BaseException:
        bar.close()
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    header["skipped"] = [str(w.message) for w in skipped if issubclass(w.category, UserWarning)]
    return header
