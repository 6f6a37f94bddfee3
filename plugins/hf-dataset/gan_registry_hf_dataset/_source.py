"""Opening the dataset and describing it: its splits, its image column and its classes. Imports datasets (~1 s) and
numpy: import lazily."""
from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import datasets
import numpy as np

from gan_registry import UserError

from . import HELDOUT_SPLITS, NONE, HFParams

HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?\Z")
"""A hub dataset's name: NAME or OWNER/NAME. A --data-dir that is no folder here and looks like one is one."""
DEFAULT_LABEL = HFParams.label
SHOWN = 80
"""How much of a feature's description a message shows."""


@dataclass
class Split:
    """One split of the data, as the run reads it."""

    data: Any
    """A `datasets.Dataset`."""
    where: str
    """What a message calls it: "split 'train' of DIR", or DIR for a dataset saved without splits."""
    labels: Any = None
    """Each row's class index (int64 numpy array), where the run has classes and every row has one."""


@dataclass
class Opened:
    """What the run reads: the split trained on, the held-out one, the image column and the classes."""

    train: Split
    heldout: Split | None
    image: str
    classes: tuple[str, ...] | None


def words(error: BaseException, limit: int = 300) -> str:
    """An error's message on one line (Pillow's "cannot identify image file <_io.BytesIO object at 0x...>" naming
    the row's bytes, not an address)."""
    text = re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "(the row's bytes)", " ".join(str(error).split()))
    return text[:limit] or type(error).__name__


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No progress bars from datasets, and no retry chatter from huggingface_hub's loggers: the run says what
    failed in one line."""
    bars = datasets.is_progress_bar_enabled()
    loggers = [logging.getLogger(name) for name in ("huggingface_hub", "datasets", "fsspec")]
    levels = [logger.level for logger in loggers]
    datasets.disable_progress_bars()
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        if bars:
            datasets.enable_progress_bars()


def _from_disk(path: Path, shown: str) -> Any:
    if not path.exists():
        raise UserError(f"--data-dir {shown} does not exist; give a folder written by datasets' save_to_disk, or a"
                        " Hugging Face hub dataset's name")
    if not path.is_dir():
        raise UserError(f"--data-dir {shown} is not a folder; give the folder datasets' save_to_disk wrote")
    one = (path / "dataset_info.json").is_file() and (path / "state.json").is_file()
    if not one and not (path / "dataset_dict.json").is_file():
        raise UserError(f"--data-dir {shown} is not a folder written by datasets' save_to_disk (it holds neither"
                        " dataset_dict.json nor dataset_info.json and state.json); for a folder of image files use"
                        " --dataset folder")
    try:
        with quiet():
            return datasets.load_from_disk(str(path))  # JSON and memory-mapped Arrow files: nothing is unpickled
    except Exception as error:  # damaged JSON or Arrow files
        raise UserError(f"--data-dir {shown} could not be read as a datasets folder: {type(error).__name__}:"
                        f" {words(error)}") from None


def _from_hub(name: str) -> Any:
    try:
        with quiet():
            return datasets.load_dataset(name)
    except Exception as error:
        raise UserError(f"cannot load '{name}' from the Hugging Face hub (there is no folder of that name here):"
                        f" {words(error)} (offline? save it with save_to_disk and give its folder)") from None


def hub_name(data_dir: str) -> str | None:
    """The hub dataset --data-dir names, where it names no file or folder here; else None.

    The engine hands datasets --data-dir as an absolute path (a run stores it so, to be resumed from anywhere): a
    name is what that path is below the working directory (NAME or OWNER/NAME)."""
    if os.path.lexists(os.path.expanduser(data_dir)):
        return None
    name = os.path.relpath(data_dir) if os.path.isabs(data_dir) else data_dir
    return name if HUB_NAME.match(name) else None


def _open(data_dir: str) -> tuple[Any, str]:
    """The Dataset or DatasetDict --data-dir names, and what messages call it."""
    name = hub_name(data_dir)
    if name is None:
        return _from_disk(Path(data_dir).expanduser(), data_dir), data_dir
    return _from_hub(name), f"hub dataset '{name}'"


def _splits(loaded: Any, params: HFParams, where: str) -> tuple[Split, Split | None]:
    """The split trained on and the held-out one (None where there is none)."""
    heldout = params.heldout.strip()
    if not isinstance(loaded, datasets.DatasetDict):  # saved from a Dataset: one split, unnamed
        if params.split != "train" or heldout.lower() not in ("auto", *NONE):
            raise UserError(f"{where} holds one dataset without splits (saved from a Dataset, not a DatasetDict);"
                            " leave -p dataset.split and -p dataset.heldout unset")
        return Split(loaded, where), None
    names = ", ".join(loaded) or "none"
    if params.split not in loaded:
        raise UserError(f"split '{params.split}' is not in {where} (splits: {names}); set -p dataset.split=NAME")
    if heldout.lower() in NONE:
        chosen = None
    elif heldout == "auto":
        chosen = next((name for name in HELDOUT_SPLITS if name in loaded and name != params.split), None)
    elif heldout not in loaded:
        raise UserError(f"held-out split '{heldout}' is not in {where} (splits: {names}); set -p dataset.heldout="
                        "NAME, auto or none")
    elif heldout == params.split:
        raise UserError(f"held-out split '{heldout}' is the split trained on; set -p dataset.heldout to another"
                        f" split ({names}) or none")
    else:
        chosen = heldout
    train = Split(loaded[params.split], f"split '{params.split}' of {where}")
    return train, None if chosen is None else Split(loaded[chosen], f"split '{chosen}' of {where}")


def _shown(feature: Any) -> str:
    text = repr(feature)
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def _check_image(split: Split, column: str) -> None:
    features = split.data.features
    images = [name for name, feature in features.items() if isinstance(feature, datasets.Image)]
    found = f"image columns: {', '.join(images)}" if images else (
        "no image column; a column of image files' paths or bytes becomes one with"
        " ds.cast_column(NAME, datasets.Image()) before save_to_disk")
    if column not in features:
        raise UserError(f"column '{column}' is not in {split.where} (columns: {', '.join(features)}; {found}); set"
                        " -p dataset.image=COLUMN")
    if not isinstance(features[column], datasets.Image):
        raise UserError(f"column '{column}' of {split.where} holds {_shown(features[column])}, not images ({found});"
                        " set -p dataset.image=COLUMN")
    if len(split.data) == 0:
        raise UserError(f"{split.where} has no rows")


def _values(split: Split, column: str) -> tuple[Any, int]:
    """The label column's values (int64, nulls as -1) and how many are null."""
    import pyarrow.compute as pc

    values = split.data.select_columns([column]).with_format("arrow")[:][column]  # one column, in row order
    return pc.fill_null(values, -1).to_numpy().astype(np.int64), values.null_count


def _classes(train: Split, heldout: Split | None, label: str) -> tuple[str, ...] | None:
    """The class names, with each split's `labels` set; None for unlabelled data."""
    if label.strip().lower() in NONE:
        return None
    features = train.data.features
    if label not in features:
        if label == DEFAULT_LABEL:
            return None  # the default column, absent: unlabelled images
        raise UserError(f"label column '{label}' is not in {train.where} (columns: {', '.join(features)}); set"
                        " -p dataset.label=COLUMN, or none for unlabelled images")
    feature = features[label]
    integers = isinstance(feature, datasets.Value) and re.fullmatch(r"u?int\d+", feature.dtype)
    if not (integers or isinstance(feature, datasets.ClassLabel)):
        raise UserError(f"label column '{label}' of {train.where} holds {_shown(feature)}, not classes; give a"
                        " ClassLabel or integer column, or -p dataset.label=none for unlabelled images")
    values, nulls = _values(train, label)
    if integers:
        known = np.unique(values[values != -1] if nulls else values)
        classes = tuple(str(v) for v in known)
    else:
        classes, known = tuple(feature.names), np.arange(feature.num_classes)
    train.labels = _indices(values, known, nulls)
    if train.labels is None:
        raise UserError(f"label column '{label}' of {train.where} has rows without a class (-1 or empty); set"
                        " -p dataset.label=none to train on the images without labels")
    if heldout is not None and heldout.data.features.get(label) == feature:
        held, held_nulls = _values(heldout, label)
        heldout.labels = _indices(held, known, held_nulls)  # None: the held-out images serve unlabelled
    return classes


def _indices(values: Any, known: Any, nulls: int) -> Any:
    """Each value's index among the `known` (sorted) values; None where a row is null or not among them."""
    if nulls:
        return None
    at = np.searchsorted(known, values).clip(0, max(len(known) - 1, 0))
    return at.astype(np.int64) if len(known) and bool((known[at] == values).all()) else None


def open_data(data_dir: str, params: HFParams) -> Opened:
    """The data --data-dir names, checked: the splits, the image column, the label column."""
    loaded, where = _open(data_dir)
    train, heldout = _splits(loaded, params, where)
    _check_image(train, params.image)
    if heldout is not None:
        _check_image(heldout, params.image)
    return Opened(train, heldout, params.image, _classes(train, heldout, params.label))


def labels_of(split: Split, opened: Opened, rows: Any) -> Any:
    """The class of each of `rows` of `split` (int64, aligned with its decoded images); None where it has none."""
    import torch

    if opened.classes is None or split.labels is None:
        return None
    return torch.from_numpy(split.labels[rows])
