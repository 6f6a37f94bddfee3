"""Finding, checking and decoding the images. Imports torch, torchvision and PIL: import lazily."""
from __future__ import annotations

import os
import stat
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Sequence

import torch
from PIL import Image, ImageOps
from torchvision import transforms
from tqdm import tqdm

from gan_registry import UserError

from . import EXTENSIONS

BACKGROUND = (255, 255, 255)
"""Transparent pixels are composited on this colour."""
PROGRESS_FROM = 2000
"""Folders with this many images show a progress bar while they are checked (on a terminal)."""
SHOWN_BAD = 5
"""How many unreadable files the warning names."""
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ORIENTATION = 0x0112  # EXIF tag


def find_images(root: Path) -> list[Path]:
    """Image files under `root`, recursively, sorted by their path relative to `root`.

    Hidden files and folders (names starting with '.') are skipped; symlinked folders are
    followed once each. Listed by name alone: decode() refuses a FIFO or device named like an image.
    """
    found: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop, or a folder linked twice
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in EXTENSIONS:
                found.append(Path(dirpath, name))
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """`img` as RGB (channels=3) or L (channels=1): transparency composited on white, 16-bit scaled."""
    if img.mode in _SIXTEEN_BIT:  # Pillow's own conversion would clip 16-bit values at 255
        img = img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, BACKGROUND + (255,)), rgba)
    return img.convert("RGB" if channels == 3 else "L")


def make_transform(size: int) -> Callable[[Image.Image], torch.Tensor]:
    """Shorter side to `size`, centre crop to size x size, uint8 tensor (C, size, size)."""
    return transforms.Compose(
        [transforms.Resize(size, antialias=True), transforms.CenterCrop(size), transforms.PILToTensor()]
    )


def _kind(mode: int) -> str:
    """What a file that is not a regular one is, for a message."""
    kinds = [(stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder")]
    return next((kind for test, kind in kinds if test(mode)), "not a file")


def open_regular(path: str | Path) -> BinaryIO:
    """`path` opened for reading; OSError unless it is a regular file (a FIFO would block a reader forever).

    Opened without blocking and checked on the open descriptor, so a file swapped for a FIFO since it was
    listed is refused too.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(f"not a regular file ({_kind(mode)})")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def decode(path: str | Path, size: int, channels: int, transform: Callable[[Image.Image], torch.Tensor]) -> torch.Tensor:
    """One image file as a uint8 tensor (channels, size, size); raises if it cannot be read in full."""
    with open_regular(path) as f, Image.open(f) as img:
        # JPEG only: decode at 1/2, 1/4 or 1/8 scale where that still leaves both sides >= size
        # (much faster for camera photos); the decoder still reads every byte of the file.
        img.draft(None, (size, size))
        img.load()  # decodes every byte: a truncated or corrupt file fails here
        try:  # photos stored sideways, with an orientation tag saying so
            if img.getexif().get(_ORIENTATION, 1) != 1:
                img = ImageOps.exif_transpose(img)
        except Exception:  # a malformed EXIF block: keep the pixels as stored
            pass
        return transform(to_mode(img, channels))


class FolderImages(torch.utils.data.Dataset):
    """Images decoded when asked for: uint8 (channels, size, size), mapped onto [-1, 1] by the engine.

    Picklable (paths and two ints), so DataLoader workers can use it under any start method.
    """

    def __init__(self, paths: Sequence[str | Path], size: int, channels: int) -> None:
        self.paths = [str(p) for p in paths]
        self.size, self.channels = size, channels
        self._transform: Any = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        if self._transform is None:
            self._transform = make_transform(self.size)
        path = self.paths[index]
        try:
            image = decode(path, self.size, self.channels, self._transform)
        except Exception as error:  # it was readable when checked: changed since
            raise OSError(f"{path} could not be read (it was readable when the run started): {error}") from error
        return image

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_transform": None}


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def _map(job: Callable[[Path], Any], items: list[Path], threads: int) -> Iterable[Any]:
    """job(item) for each item, in order; in a thread pool (PIL decodes without holding the GIL)."""
    if threads <= 1 or len(items) < 2:
        yield from map(job, items)
        return
    pool = ThreadPoolExecutor(max_workers=min(threads, len(items)), thread_name_prefix="folder-decode")
    try:
        yield from pool.map(job, items)
    finally:  # on Ctrl-C, or an error, do not decode the rest before stopping
        pool.shutdown(wait=True, cancel_futures=True)


def _nothing_message(root: Path, bad: list[tuple[Path, str]]) -> str:
    looked = f"looked for {', '.join(EXTENSIONS)} files (any case) in it and its subfolders"
    if not bad:
        return f"no images in {root} ({looked})"
    names = ", ".join(str(p.relative_to(root)) for p, _ in bad[:SHOWN_BAD])
    return f"no readable images in {root} ({looked}); {len(bad)} could not be read, e.g. {names}: {bad[0][1]}"


def load(
    data_dir: str | Path,
    *,
    size: int,
    channels: int = 3,
    in_memory: str = "auto",
    max_memory_mb: int = 2048,
    threads: int = 0,
    with_paths: bool = False,
) -> Any:
    """The images under `data_dir`: one uint8 tensor (N, C, size, size), or a FolderImages dataset.

    Every file is decoded once here either way; unreadable ones are left out with one warning.
    """
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise UserError(f"--data-dir {data_dir} {what}; give a folder of images for dataset 'folder'")
    paths = find_images(root)
    if not paths:
        raise UserError(_nothing_message(root, []))

    needed = len(paths) * channels * size * size
    keep = in_memory == "always" or (in_memory == "auto" and needed <= max_memory_mb * 2**20)
    transform = make_transform(size)

    def job(path: Path) -> tuple[torch.Tensor | None, str | None]:
        try:
            return decode(path, size, channels, transform), None
        except Exception as error:  # unreadable: any decoder error, a decompression bomb, ...
            return None, (str(error) or type(error).__name__)

    # Decoded images go straight into one uint8 buffer, kept as it is: a quarter of float32's bytes.
    buffer = torch.empty((len(paths), channels, size, size), dtype=torch.uint8) if keep else None
    good: list[Path] = []
    bad: list[tuple[Path, str]] = []
    decoded = zip(paths, _map(job, paths, threads or _default_threads()))
    # a bar where someone watches (a terminal) and there is something to wait for; logs and tests get none
    bar = tqdm(decoded, total=len(paths), desc="checking images", unit="img", file=sys.stderr, leave=False,
               dynamic_ncols=True, disable=None if len(paths) >= PROGRESS_FROM else True)
    for path, (image, error) in bar:
        if error is not None:
            bad.append((path, error))
            continue
        if buffer is not None:
            buffer[len(good)] = image
        good.append(path)

    if not good:
        raise UserError(_nothing_message(root, bad))
    if bad:
        names = ", ".join(str(p.relative_to(root)) for p, _ in bad[:SHOWN_BAD])
        more = f" and {len(bad) - SHOWN_BAD} more" if len(bad) > SHOWN_BAD else ""
        warnings.warn(
            f"dataset 'folder': skipped {len(bad)} unreadable image file{'s' if len(bad) != 1 else ''}"
            f" of {len(paths)} in {root}: {names}{more} (first: {bad[0][1]})",
            UserWarning,
            stacklevel=3,
        )
    if buffer is not None:
        data = buffer[: len(good)]
    else:
        data = FolderImages(good, size, channels)
    return (data, good) if with_paths else data


def labels_of(root: str | Path, paths: Sequence[Path], classes: Sequence[str]) -> torch.Tensor:
    """Each image's class: the index in `classes` of the first folder under `root` it lies in."""
    root = Path(root).expanduser()
    index = {name: i for i, name in enumerate(classes)}
    return torch.tensor([index[Path(p).relative_to(root).parts[0]] for p in paths], dtype=torch.int64)
