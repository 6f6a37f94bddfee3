"""The run folder: its config, its checkpoints on disk, the lock of its one writer, reading a run back, and undoing
what an unfinished run wrote. Starting, reopening and training a run is `api.Run`'s.

Layer: run storage (docs/architecture.md).
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import stat
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch

from . import _distributed, _threads, checkpoint
from ._version import __version__
from ._components import KIND_BY_NAME
from ._plan import EMA_KEY, Plan, Settings, make_plan
from ._files import read_text
from ._registry import Registry
from . import _runlock
from ._runlock import LOCK_NAME
from .errors import CheckpointError, UserError

CONFIG_NAME = "config.json"
RUN_CONFIG_LIMIT = 16 << 20
"""Bytes a run's config.json may have: a real one has a few kilobytes."""


def default_run_dir(settings: Settings, root: Path = Path("runs")) -> Path:
    """A new folder under `root`; runs started in the same second get -2, -3, ... appended."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = root / f"{stamp}-{settings.arch}-{settings.objective}-{settings.dataset}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def check_new_run_dir(run_dir: Path) -> None:
    """A run starts only in a new or empty folder: nothing of the user's is overwritten or mixed in."""
    try:
        _check_new_run_dir(run_dir)
    except OSError as error:  # a name too long, a folder that cannot be listed
        raise UserError(f"--out {run_dir}: {error.strerror or error}") from None


def _check_new_run_dir(run_dir: Path) -> None:
    if (run_dir / "checkpoints" / "last.pt").exists():
        raise UserError(f"{run_dir} already holds a run; continue it with `gan resume {run_dir}` or pick another --out")
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {run_dir} is a file; give a folder for the run")
    blocking = next((p for p in run_dir.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise UserError(f"--out {run_dir}: {blocking} is a file, so no folder can be made there")
    if run_dir.is_dir() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
        raise UserError(f"--out {run_dir} is not empty; give a new or empty folder for the run")


def _processes(run_dir: Path, world: Any, step: int) -> list[dict[str, Any]]:
    """config.json's record of the processes that trained the run, each from the step it started at: facts of
    the run (a resume on another world size adds an entry), never settings a resume reuses."""
    try:
        previous = json.loads(read_text(run_dir / CONFIG_NAME, limit=RUN_CONFIG_LIMIT)).get("processes", [])
    except (OSError, ValueError, AttributeError, RecursionError):
        previous = []
    previous = [p for p in previous if isinstance(p, dict) and isinstance(p.get("from_step"), int)
                and p["from_step"] < step] if isinstance(previous, list) else []
    now = {"from_step": step, **world.record()}
    if previous and {k: v for k, v in previous[-1].items() if k != "from_step"} == world.record():
        return previous
    return previous + [now]


def write_config(run_dir: Path, plan: Plan, world: Any = None, step: int = 0) -> None:
    """The run's config.json; in a distributed run rank 0 alone writes it."""
    world = world or _distributed.current()
    if not world.main:
        return
    config = {
        "settings": plan.settings.as_dict(),
        "components": plan.component_record(),
        "sample_shape": list(plan.spec.sample_shape),
        "value_range": list(plan.spec.value_range) if plan.spec.value_range else None,
        "latent_dim": plan.latent_dim,
        "versions": {"gan-registry": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "processes": _processes(run_dir, world, step),
    }
    if plan.defaults_from:
        config["defaults_from"] = dict(plan.defaults_from)
    threads = _threads.chosen()
    if threads is not None:  # a note for people; a resume starts with the same count unless told otherwise
        config["threads"] = threads
    path = run_dir / CONFIG_NAME
    tmp = path.with_name(f".{CONFIG_NAME}.tmp")
    try:
        tmp.write_text(json.dumps(config, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as error:  # a full disk: a fault, not the user's mistake
        tmp.unlink(missing_ok=True)
        raise checkpoint.write_error(str(path), error, kept="") from None


def read_config(run_dir: Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"no run directory at {run_dir}")
    path = run_dir / CONFIG_NAME
    try:
        config = json.loads(read_text(path, limit=RUN_CONFIG_LIMIT))
    except FileNotFoundError:
        raise UserError(f"{run_dir} is not a run directory (no {CONFIG_NAME})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON: {error}") from None
    except RecursionError:
        raise UserError(f"{path} is nested too deeply to be the config of a gan run") from None
    except OSError as error:
        raise UserError(f"{path} cannot be read: {error.strerror or error}") from None
    if not (isinstance(config, dict) and isinstance(config.get("settings"), dict)):
        raise UserError(f"{path} is not the config of a gan run (no 'settings' table); is {run_dir} a run directory?")
    return config


SETTING_OF_SLOT = {"architecture": "arch"}
"""config.json's component slots that a setting of another name chooses."""


def _recorded_names(registry: Registry, config: dict[str, Any]) -> dict[str, str]:
    """The exact name of each recorded component whose bare name now clashes: the one the run was made with.

    A package installed after the run started that registers the same name then changes nothing.
    """
    names = {}
    recorded = config.get("components")
    for slot, was in (recorded.items() if isinstance(recorded, dict) else ()):
        if not (isinstance(was, dict) and isinstance(was.get("name"), str) and slot in KIND_BY_NAME):
            continue
        group = [c for c in registry.components(slot) if c.name == was["name"]]
        if len(group) < 2:
            continue
        same = [c for c in group if c.origin and (c.origin.plugin, c.origin.distribution)
                == (was.get("plugin"), was.get("distribution"))]
        if same:
            names[SETTING_OF_SLOT.get(slot, slot)] = registry.qualified(same[0])
    return names


def plan_for_run(registry: Registry, run_dir: Path, *, for_training: bool = True,
                 **overrides: Any) -> tuple[Plan, dict[str, Any]]:
    """Rebuild the plan a run was made with, checking its components are still installed."""
    config = read_config(run_dir)
    try:
        settings = Settings(**{**config["settings"], **_recorded_names(registry, config), **overrides})
    except TypeError as error:
        raise UserError(f"{run_dir}/{CONFIG_NAME} does not match this gan-registry version: {error}") from None
    plan = make_plan(registry, settings, take_suggestions=False, for_training=for_training)
    recorded_defaults = config.get("defaults_from")
    if isinstance(recorded_defaults, dict):  # where the run's settings came from when it started: kept on resume
        plan.defaults_from = {str(k): str(v) for k, v in recorded_defaults.items()
                              if k not in overrides or overrides[k] is None}
    recorded, current = config.get("components"), plan.component_record()
    for slot, was in (recorded.items() if isinstance(recorded, dict) else ()):
        if not isinstance(was, dict) or slot not in current:  # an augment is only rebuilt to train
            continue
        now = current[slot]
        if was.get("version") != now.get("version"):
            warnings.warn(
                f"{slot} '{was.get('name')}' was {was.get('distribution')} {was.get('version')} for this run,"
                f" now {now.get('distribution')} {now.get('version')}",
                stacklevel=2,
            )
    return plan, config


@contextlib.contextmanager
def fitting(run_dir: Path) -> Iterator[None]:
    """A checkpoint whose contents do not fit the run's networks (an edited config.json) is the user's to fix."""
    try:
        yield
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointError(
            f"{run_dir}/checkpoints/last.pt does not fit the networks {CONFIG_NAME} describes ({first})"
        ) from None


@contextlib.contextmanager
def writing(run_dir: Path) -> Iterator[None]:
    """The run folder's lock while training writes in it; rank 0 alone writes, so it alone locks (torchrun's
    RANK, since a resume joins the job only once it reopens the run)."""
    main = not _distributed.launched() or os.environ.get("RANK") == "0"
    with _runlock.writing(run_dir) if main else contextlib.nullcontext():
        yield


def check_run_files(run_dir: Path) -> None:
    """What a resumed run writes to is what it wrote: a folder that someone else may have handed over holds no link
    (samples/ pointing elsewhere would take the grids there) and no FIFO or folder where a file belongs."""
    for name in (*RUN_FILES, LOCK_NAME):
        path = Path(run_dir) / name
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        folder = name in ("samples", "checkpoints")
        if stat.S_ISLNK(mode) or not (stat.S_ISDIR(mode) if folder else stat.S_ISREG(mode)):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "not a folder" if folder else "not a regular file"
            raise UserError(f"{path} is {what}: a run writes only into its own files and folders, so it is not"
                            f" resumed; put a real {'folder' if folder else 'file'} there")


RUN_FILES = (CONFIG_NAME, "metrics.jsonl", "metrics.csv", "samples", "checkpoints")
"""What a run writes into its folder: all that an unfinished run's clean-up removes."""


def remove_unfinished(trainer) -> None:
    """Undo a run that stopped before its first checkpoint: its folder if the run made it, else only its files."""
    run_dir = trainer.run_dir
    if not trainer.world.main:
        return
    try:
        if getattr(trainer, "made_run_dir", False):
            shutil.rmtree(run_dir)
        else:
            for name in RUN_FILES:
                path = run_dir / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif path.exists() or path.is_symlink():
                    path.unlink()
    except OSError as error:
        print(f"could not remove what the unfinished run wrote in {run_dir}: {error}", file=sys.stderr)
        return
    print(f"removed what the run wrote in {run_dir}: it stopped before its first checkpoint", file=sys.stderr)


def run_contents(run_dir: Path) -> str:
    """What a run folder holds, for people: its checkpoint, its pictures, its logs."""
    run_dir = Path(run_dir)
    parts = [f"checkpoints/{p.name}" for p in sorted((run_dir / "checkpoints").glob("*.pt"))
             if p.name in ("last.pt", "best.pt")]
    pictures = sorted((run_dir / "samples").glob("*.png"))
    if pictures:
        animated = [p.name for p in sorted((run_dir / "samples").glob("*.gif"))]
        newest = max(pictures, key=lambda p: p.stat().st_mtime_ns)
        parts.append(f"samples/ ({len(pictures)} pictures, last {newest.name}"
                     + "".join(f", {name}" for name in animated) + ")")
    parts += [p.name + ("/" if p.is_dir() else "") for p in sorted(run_dir.iterdir())
              if p.name not in (CONFIG_NAME, "samples", "checkpoints") and not p.name.startswith(".")]
    return ", ".join(parts)


def load_networks(registry: Registry, run_dir: Path, device: str = "cpu", checkpoint_name: str = "last.pt",
                  average: bool = True) -> tuple[Plan, dict[str, Any]]:
    """The run's networks with their checkpointed weights (last.pt, or e.g. best.pt), in eval mode.

    In a run with a generator average (`--ema`), "generator" is the average (False for `average`: the trained
    weights), and the other one is there too, as "generator_ema" or "generator_trained"."""
    plan, _ = plan_for_run(registry, run_dir, for_training=False)
    state = checkpoint.load(Path(run_dir) / "checkpoints" / checkpoint_name)
    networks = torch.nn.ModuleDict(plan.build_networks(device))
    with fitting(run_dir):
        networks.load_state_dict(state["models"])
    networks.eval()
    found = dict(networks.items())
    if EMA_KEY in found and average:
        found["generator_trained"], found["generator"] = found["generator"], found.pop(EMA_KEY)
    return plan, found
