"""Checkpoints: plain data only, written atomically, read back without running any code.

A checkpoint is a `torch.save` file holding only tensors, numbers, strings, lists and dicts, and
every load uses `weights_only=True`: a crafted file is refused before anything in it runs. RNG
states, which Python and NumPy hand out as tuples and arrays, are converted to that form here.

Layer: primitives (docs/architecture.md).
"""
from __future__ import annotations

import contextlib
import errno
import os
import pickle
import pickletools
import random
import re
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np
import torch

from ._files import NotARegularFile, fsync_dir, open_regular, replacing, write_error  # noqa: F401 (re-exported)
from .errors import CheckpointError

FORMAT_VERSION = 2
"""1: gan-registry 0.2 and older (pickled NumPy arrays, loaded with full unpickling); 2: plain data."""
STEP_FILE = re.compile(r"step-(\d+)\.pt\Z")


def rng_state() -> dict[str, Any]:
    version, python_state, gauss = random.getstate()
    key, numpy_keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": {"version": version, "state": torch.tensor(python_state, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "key": key,
            "keys": torch.from_numpy(numpy_keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
        # The training device's: a distributed run's rank r trains on cuda:r, and any rank may resume it.
        state["cuda_current"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["key"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
        if "cuda_current" in state:
            torch.cuda.set_rng_state(state["cuda_current"])


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Leave the Python, NumPy and torch random states (and torch's thread count) as they were."""
    saved, threads = rng_state(), torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        set_rng_state(saved)


def remove_leftovers(folder: Path) -> None:
    """Temporary files of writes that a kill -9 or a power cut interrupted: never a checkpoint."""
    if folder.is_dir():
        for leftover in (*folder.glob(".*.tmp"), *folder.glob(".*.link")):
            leftover.unlink(missing_ok=True)


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """Write a checkpoint through `replacing`: never half of one, and the previous one kept if it fails."""
    with replacing(path, f"checkpoint {path}") as (f, _):
        torch.save({"format": FORMAT_VERSION, **payload}, f)


def _link_atomic(source: Path, target: Path) -> None:
    """Make `target` the same file as `source` in one rename (a copy where hard links are refused)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(source, tmp)
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise
            shutil.copyfile(source, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise write_error(f"checkpoint {target}", error) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def step_files(folder: Path) -> list[Path]:
    """The kept `step-N.pt` checkpoints in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := STEP_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def save_kept(payload: dict[str, Any], last: Path, step: int, keep: int) -> None:
    """Write `last` atomically; with keep > 1 also keep `step-N.pt` files of the `keep` newest saves.

    `last` is then a hard link to the newest of them, so keeping costs no extra space for it.
    """
    if keep <= 1:
        save_atomic(payload, last)
        return
    numbered = last.with_name(f"step-{step:07d}.pt")
    save_atomic(payload, numbered)
    _link_atomic(numbered, last)
    for old in step_files(last.parent)[:-keep]:
        old.unlink(missing_ok=True)


def _refused(path: Path, what: str, kind: str = "checkpoint") -> CheckpointError:
    why = (f"refused {path}: it holds Python objects ({what}), not just tensors and plain values, so loading it"
           " could run code; nothing in it was run.")
    if kind != "checkpoint":
        return CheckpointError(f"{why} Use a {kind} of plain tensors (a state dict saved with torch.save)")
    return CheckpointError(f"{why} It was crafted, or written by gan-registry 0.2 or older (checkpoint format 1),"
                           " which this version does not open: retrain the run")


def _pickle_globals(f: BinaryIO) -> list[str]:
    """Names a plain pickle file would import, read from its opcodes without executing any."""
    names: list[str] = []
    strings: list[str] = []
    try:
        for opcode, arg, _pos in pickletools.genops(f):
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "STRING", "BINSTRING"):
                strings.append(str(arg))
            elif opcode.name == "GLOBAL":
                names.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # not a pickle, or a broken one: the caller reports it as corrupt
        pass
    return names


def open_user_file(path: Path, kind: str) -> BinaryIO:
    """`path` opened for reading if it is a regular file: a FIFO would block the open until a writer came, so it
    is opened without blocking and refused, as are devices and folders."""
    try:
        return open_regular(path)
    except (FileNotFoundError, NotADirectoryError):
        raise CheckpointError(f"no {kind} at {path}") from None
    except NotARegularFile:
        raise CheckpointError(f"{kind} {path} is not a regular file") from None
    except OSError as error:
        raise CheckpointError(f"cannot read {kind} {path}: {error.strerror or error}") from None


def _load_plain(path: Path, kind: str, map_location: Any) -> Any:
    """A torch.save file's payload, loaded with weights_only=True; a pickle with code in it is refused unrun."""
    corrupt = f"{kind} {path} is corrupt or truncated"
    with open_user_file(path, kind) as f:
        if not zipfile.is_zipfile(f):  # torch.save has written zip files since torch 1.6; ours always are
            f.seek(0)
            imported = _pickle_globals(f)
            if imported:
                raise _refused(path, ", ".join(dict.fromkeys(imported)), kind)
            raise CheckpointError(f"{corrupt} (not a torch zip file)")
        f.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return torch.load(f, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as error:
            found = re.search(r"GLOBAL ([\w.]+)", str(error))
            if found:
                raise _refused(path, found.group(1), kind) from None
            raise CheckpointError(f"{corrupt} ({type(error).__name__})") from None
        except Exception as error:
            raise CheckpointError(f"{corrupt} ({type(error).__name__})") from None


def shown(value: Any) -> str:
    """A value read from a crafted file, for a message: short, and never the repr of something nested deeply."""
    if value is None or isinstance(value, (bool, float)) or isinstance(value, int) and value.bit_length() <= 64:
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else f"{value[:37]!r}..."
    return "a larger integer" if isinstance(value, int) else f"a {type(value).__name__}"


def _count(value: Any) -> bool:
    """Steps, epochs and batch positions end up as int64 values (tensors, seeds, logs)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _check_state(payload: dict[str, Any], path: Path) -> None:
    """Refuse a damaged or edited checkpoint in one line naming the field, before a resume or a sample uses it.

    Checked are the types and ranges of what is there; whoever reads a field requires it. Whether `data.position`
    lies within an epoch depends on the dataset and the batch size, which the data's `restore` knows.
    """
    def check(field: str, value: Any, fits: bool, expected: str) -> None:
        if not fits:
            raise CheckpointError(f"checkpoint {path}: its {field} is {shown(value)}, not {expected}; the file is "
                                  "damaged or was edited")

    count = "a whole number from 0 to 2**63-1"
    if "step" in payload:
        check("step", payload["step"], _count(payload["step"]), count)
    if "data" in payload:
        data = payload["data"]
        check("data", data, isinstance(data, dict), "a table of epoch and position")
        for key in ("epoch", "position"):
            check(f"data.{key}", data.get(key), _count(data.get(key)), count)
    if "models" in payload:
        models = payload["models"]
        check("models", models, isinstance(models, dict) and all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in models.items()), "a table of tensors")
    if "optimizers" in payload:
        optimizers = payload["optimizers"]
        check("optimizers", optimizers, isinstance(optimizers, dict) and all(
            isinstance(v, dict) for v in optimizers.values()), "a table of optimizer states")
    for field, kind, expected in (("fixed_noise", torch.Tensor, "a tensor"), ("rng", dict, "a table of RNG states"),
                                  ("callbacks", dict, "a table of callback states")):
        if field in payload:
            check(field, payload[field], isinstance(payload[field], kind), expected)


def load(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint's payload; refuses anything that is not plain data, without running it, and fields of the
    wrong type or out of range."""
    path = Path(path)
    payload = _load_plain(path, "checkpoint", map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        found = payload.get("format") if isinstance(payload, dict) else None
        detail = f" (it says format {shown(found)})" if found is not None else ""
        raise CheckpointError(f"{path} is not a gan-registry checkpoint of format {FORMAT_VERSION}{detail}")
    _check_state(payload, path)
    return payload


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A weights file (a state dict saved with torch.save), opened as untrusted input: plain tensors only."""
    path = Path(path).expanduser()
    state = _load_plain(path, "weights file", "cpu")
    if not (isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise CheckpointError(f"weights file {path} is not a state dict (a dict of tensors)")
    return state
