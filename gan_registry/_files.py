"""Reading the files a user hands over, any of which may be crafted: only regular files, and bounded.

A FIFO named config.json would block `open` forever; O_NONBLOCK makes the open return, and fstat then tells.

Layer: primitives (docs/architecture.md).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from .errors import NotARegularFile, UserError, WriteError


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


TOML_LIMIT = 1 << 20
"""Bytes a settings file may have: a real one has a few hundred."""


def read_toml(path: str | os.PathLike, flag: str = "--config") -> dict[str, Any]:
    """A settings file (`gan run --config`, `gan study run`) parsed; each mistake is one line naming `flag PATH`."""
    # tomllib: ~3 ms (its parser compiles regular expressions as it loads) that only the commands reading one need
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    where = f"{flag} {path}".strip()
    try:
        return tomllib.loads(read_text(path, limit=TOML_LIMIT))
    except FileNotFoundError:
        raise UserError(f"{where}: no such file") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{where}: not UTF-8 text (byte {error.object[error.start]:#04x} at offset"
                        f" {error.start}); TOML files are UTF-8") from None
    except RecursionError:
        raise UserError(f"{where}: nested too deeply to be settings") from None
    except OSError as error:
        raise UserError(f"{where}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{where}: {error}") from None


RECORD_LIMIT = 16 * 2**20
"""A record a command keeps beside its runs (a matrix cell's, a study's) is a few KB: anything larger is not ours."""


def read_record(path: str | os.PathLike) -> Any:
    """A JSON record a command wrote, or None where it is missing, not a regular file, too large or not JSON (what
    it records is then made again)."""
    try:
        return json.loads(read_text(path, limit=RECORD_LIMIT))
    except (OSError, ValueError, RecursionError):
        return None


def write_record(path: str | os.PathLike, value: Any) -> None:
    """Replace a JSON record whole: a reader never sees half of one."""
    with replacing(path, str(path), kept="") as (f, _):
        f.write((json.dumps(value, indent=2) + "\n").encode())


def last_error_line(log: str | os.PathLike) -> str:
    """What a child command's log says last: its `Error:` line if it has one, else its last line."""
    lines = [line for line in Path(log).read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors or lines or ["(no output)"])[-1].removeprefix("Error: ")


# -- writing a file whole: atomic replacement (checkpoints, grids, records, exports) -------------------------------
def fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


KEPT = "the previous checkpoint is kept"


def write_error(what: str, error: OSError, kept: str = KEPT) -> WriteError:
    """A failed write of a file (checkpoint, grid, log, samples, export), in the one line every such failure gets."""
    reason = "no space left on device" if error.errno == errno.ENOSPC else (error.strerror or str(error))
    return WriteError(f"could not write {what}: {reason}" + (f"; {kept}" if kept else ""))


def _umask() -> int:
    """The process's umask, from /proc where Linux shows it: setting it to read it races with other threads."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o077)  # elsewhere reading it means setting it: a strict one meanwhile
        os.umask(mask)
        return mask


class _WatchedFile:
    """A file whose failed writes are remembered: torch.save turns the OSError of a full disk into a RuntimeError
    that no longer says why."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._file.write(data)
        except OSError as error:
            self.error = self.error or error
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


@contextlib.contextmanager
def replacing(path: Path, what: str, kept: str = KEPT, suffix: str = ".tmp") -> Iterator[tuple[BinaryIO, Path]]:
    """A new file beside `path` to write, as an open file and its name (ending `suffix`); fsynced and renamed over
    `path` when the block ends, with the mode any new file of the user's gets (0666 less the umask).

    A crash at any point (kill -9 included) leaves either the old file or the new one, never half of one; a failed
    write (a full disk) leaves the old one and raises WriteError naming `what`, followed by `kept`.
    """
    path = Path(path)
    watched: _WatchedFile | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as error:
        raise write_error(what, error, kept) from None
    try:
        with os.fdopen(fd, "wb") as f:
            watched = _WatchedFile(f)
            yield watched, Path(tmp)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(what, error, kept) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        if watched is not None and watched.error is not None:  # torch.save's zip writer says "unexpected pos"
            raise write_error(what, watched.error, kept) from None
        raise
    fsync_dir(path.parent)
