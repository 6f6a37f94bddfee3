"""Reading the files a user hands over, any of which may be crafted: only regular files, and bounded.

A FIFO named config.json would block `open` forever; O_NONBLOCK makes the open return, and fstat then tells.

Layer: primitives (docs/architecture.md).
"""
from __future__ import annotations

import os
import stat
from typing import BinaryIO
from .errors import NotARegularFile


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """`path` opened for reading if it is a regular file (FileNotFoundError, NotARegularFile or OSError
    otherwise): opened without blocking, so a FIFO is refused rather than waited on."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotARegularFile(f"{path} is {_kind(mode)}, not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_bytes(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """The bytes of a regular file (see `open_regular`); `limit` bounds what is read, so a huge file is refused
    rather than read whole."""
    with open_regular(path) as f:
        data = f.read(-1 if limit is None else limit + 1)
    if limit is not None and len(data) > limit:
        raise OSError(f"{path} is larger than {limit:,} bytes, more than such a file ever is")
    return data


def read_text(path: str | os.PathLike, limit: int | None = None) -> str:
    """`read_bytes` decoded as UTF-8 (UnicodeDecodeError for other bytes)."""
    return read_bytes(path, limit).decode("utf-8")
