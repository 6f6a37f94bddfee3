"""How many threads torch's CPU kernels use: chosen on purpose, not torch's one per core.

torch starts one intra-op thread per core. On a machine where another job runs, or where `gan matrix`, a study or
torchrun starts several processes, those threads outnumber the free cores and spin against each other: the
README's first command took 48 minutes instead of about one on a shared 2-core machine. The default here shares
the cores among the processes started together and leaves out the cores other work keeps busy.

Layer: primitives (docs/architecture.md).
"""
from __future__ import annotations

import os
from typing import Any

from .errors import UserError

ENV = "GAN_REGISTRY_THREADS"
"""Threads per process, set by a command that starts several (`gan matrix`), or by the user."""

_chosen: dict[str, Any] = {}


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _local_processes() -> int:
    """Processes training side by side on this machine (torchrun's LOCAL_WORLD_SIZE), this one included."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def _busy_cores() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def _count(text: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{where} must be a whole number of threads, got {text!r}") from None
    if not 1 <= value <= 1024:
        raise UserError(f"{where} must be from 1 to 1024 threads, got {value}")
    return value


def choose(asked: int | None = None, recorded: int | None = None) -> tuple[int, str]:
    """(threads, why): --threads, else the environment's choice, else the run's own earlier choice (a resume
    keeps its arithmetic), else this machine's free share of the cores."""
    if asked is not None:
        return _count(str(asked), "--threads"), "--threads"
    if os.environ.get(ENV):
        return _count(os.environ[ENV], ENV), f"{ENV} (set by the command that started this process, or by you)"
    if os.environ.get("OMP_NUM_THREADS"):
        return _count(os.environ["OMP_NUM_THREADS"], "OMP_NUM_THREADS"), "OMP_NUM_THREADS"
    if recorded is not None:
        return _count(str(recorded), "the run's recorded threads"), "the count this run started with"
    cores, processes, busy = usable_cores(), _local_processes(), _busy_cores()
    share = max(1, cores // processes)
    free = max(1, cores - int(busy + 0.5))
    count = min(share, free)
    why = f"{cores} cores shared by {processes} process{'es' if processes > 1 else ''}"
    if count < share:
        why += f", load average {busy:.1f} from other work"
    return count, why + "; --threads N to choose"


def use(asked: int | None = None, recorded: int | None = None) -> dict[str, Any]:
    """Set torch's CPU thread count for this process and remember why (the run's config shows it)."""
    import torch  # ~3 s: `gan --help` loads this module (through api), without torch

    count, why = choose(asked, recorded)
    torch.set_num_threads(count)
    _chosen.clear()
    _chosen.update(count=count, why=why)
    return dict(_chosen)


def chosen() -> dict[str, Any] | None:
    """What `use` set in this process, for the run's config; None where nothing chose."""
    return dict(_chosen) if _chosen else None
