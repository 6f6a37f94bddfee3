"""One writer per run folder: an OS file lock held while a process trains in it.

`flock` locks belong to the open file, so the kernel drops them when the holder exits, however it exits: a
kill -9 leaves no stale lock. Readers (`gan sample`, `eval`, `runs`, `plot`) never take it.

Layer: run storage (docs/architecture.md).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import sys
from pathlib import Path
from typing import Iterator

from .errors import RunFolderBusy, UserError

LOCK_NAME = ".lock"
"""In the run folder; hidden, like the other files a run keeps for itself."""
TRIES = 3
"""Opens of the lock file: a refused writer may remove the one another opened a moment before (see `_lock`)."""

_made_here: set[Path] = set()
"""Run folders that a lock this process holds made: a run that stops before its first checkpoint removes them."""


def made_here(run_dir: Path) -> bool:
    """The lock this process holds on `run_dir` made the folder (so undoing the run removes it)."""
    return Path(run_dir).absolute() in _made_here


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it into the file (read through our own descriptor)."""
    try:
        said = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
    except OSError:
        said = ""
    pid, _, command = said.partition(" ")
    if not pid.isdigit():
        return "another process"
    return f"another process (pid {pid}" + (f": {command}" if command else "") + ")"


def _busy(run_dir: Path, fd: int) -> RunFolderBusy:
    return RunFolderBusy(f"{run_dir} is in use: {_holder(fd)} is training in it; wait for it to end or stop it, then"
                         " try again")


def _open(path: Path, run_dir: Path) -> int:
    try:
        # O_NOFOLLOW: a link planted in the folder is not followed to a file elsewhere; O_NONBLOCK: nor a FIFO waited on
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise UserError(f"{run_dir}: cannot open its lock file {path} ({error.strerror or error})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"{run_dir}: its lock file {path} is not a regular file; remove it")
    return fd


def _lock(run_dir: Path) -> int:
    """The lock file's descriptor, locked. The file locked must still be the one at its path: a writer refused
    before any run came of it removes the lock file it made, and one that opened it meanwhile would hold a lock on
    a file no one else can find."""
    path = run_dir / LOCK_NAME
    for _ in range(TRIES):
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"--out {run_dir}: cannot make the run folder ({error.strerror or error})") from None
        fd = _open(path, run_dir)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy = _busy(run_dir, fd)
            os.close(fd)
            raise busy from None
        try:
            now = os.stat(path, follow_symlinks=False)
        except OSError:
            now = None
        held = os.fstat(fd)
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            return fd
        os.close(fd)
    raise RunFolderBusy(f"{run_dir} is in use: its lock file keeps changing as other processes start in it")


def check_free(run_dir: Path) -> None:
    """Refuse now, in one line, what `writing` would refuse: for a command about to hand the run to other
    processes (torchrun), whose rank 0 would refuse only after every rank had started."""
    path = Path(run_dir) / LOCK_NAME
    if not path.exists():
        return
    fd = _open(path, Path(run_dir))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(Path(run_dir), fd) from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def writing(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock while the block writes in it; refuse at once if another process holds it.

    A folder this made, or a lock file this made, is removed again when no run came of it (the command was
    refused), so a refusal leaves the disk as it was.
    """
    run_dir = Path(run_dir)
    made = next((p for p in [*reversed(run_dir.parents), run_dir] if not p.exists()), None)
    made_lock = not os.path.lexists(run_dir / LOCK_NAME)
    fd = _lock(run_dir)
    key = run_dir.absolute()
    try:
        with contextlib.suppress(OSError):  # who holds it is a courtesy to the next writer: a full disk may refuse it
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {' '.join(['gan', *sys.argv[1:]])[:400]}\n".encode(), 0)
        if made is not None:
            _made_here.add(key)
        try:
            yield
        finally:
            _made_here.discard(key)
            if not (run_dir / "config.json").exists():  # refused or undone: nothing of a run is left
                _remove(run_dir / LOCK_NAME, run_dir, made, made_lock)
    finally:
        os.close(fd)  # releases the lock


def _remove(lock: Path, folder: Path, made: Path | None, made_lock: bool) -> None:
    """The lock file if this made it, and the folders this made (`made` and those under it), if empty."""
    if made_lock:
        with contextlib.suppress(OSError):
            lock.unlink()
    while made is not None:
        try:
            folder.rmdir()
        except FileNotFoundError:  # the run's own undoing removed it already
            pass
        except OSError:  # not empty: what is in it stays, and so do the folders above
            break
        if folder == made:
            break
        folder = folder.parent
