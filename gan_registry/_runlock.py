"""One writer per run folder: an OS file lock held while a process trains in it.

`flock` locks belong to the open file, so the kernel drops them when the holder exits, however it exits: a
kill -9 leaves no stale lock. Readers (`gan sample`, `eval`, `runs`, `plot`) never take it.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from pathlib import Path
from typing import Iterator

from .errors import UserError

LOCK_NAME = ".lock"
"""In the run folder; hidden, like the other files a run keeps for itself."""


class RunFolderBusy(UserError):
    """Another process trains in the run folder."""


def _holder(path: Path) -> str:
    try:
        with open(path, "rb") as f:  # a regular file: this process made it, or the holder did
            said = f.read(512).decode("utf-8", "replace").strip()
    except OSError:
        said = ""
    pid, _, command = said.partition(" ")
    if not pid.isdigit():
        return "another process"
    return f"another process (pid {pid}" + (f": {command}" if command else "") + ")"


@contextlib.contextmanager
def writing(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock while the block writes in it; refuse at once if another process holds it.

    A folder this made, or a lock file this made, is removed again when no run came of it (the command was
    refused), so a refusal leaves the disk as it was.
    """
    run_dir = Path(run_dir)
    made = next((p for p in [*reversed(run_dir.parents), run_dir] if not p.exists()), None)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"--out {run_dir}: cannot make the run folder ({error.strerror or error})") from None
    path = run_dir / LOCK_NAME
    made_lock = not os.path.lexists(path)
    try:
        # O_NOFOLLOW: a link planted in the folder is not followed to a file elsewhere
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise UserError(f"{run_dir}: cannot open its lock file {path} ({error.strerror or error})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderBusy(f"{run_dir} is in use: {_holder(path)} is training in it; wait for it to end or stop"
                                " it, then try again") from None
        with contextlib.suppress(OSError):  # who holds it is a courtesy to the next writer: a full disk may refuse it
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {' '.join(['gan', *sys.argv[1:]])[:400]}\n".encode())
        try:
            yield
        finally:
            if not (run_dir / "config.json").exists():  # refused or undone: nothing of a run is left
                _remove(path, run_dir, made, made_lock)
    finally:
        os.close(fd)  # releases the lock


def _remove(lock: Path, folder: Path, made: Path | None, made_lock: bool) -> None:
    """The lock file if this made it, and the folders this made (`made` and those under it), if empty."""
    with contextlib.suppress(OSError):
        if made_lock:
            lock.unlink()
        while made is not None:
            folder.rmdir()  # only if empty: OSError otherwise, and the rest stays
            if folder == made:
                break
            folder = folder.parent
