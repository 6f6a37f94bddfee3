"""CIFAR-10's python batches, read without trusting them.

The release stores each batch as a pickle, and torchvision opens them with `pickle.load`, which runs
whatever code a crafted file names. Here they are read by an unpickler that admits only what the
format holds (dicts, lists, strings, numbers and uint8 NumPy arrays) and refuses anything else before
it is called.
"""
from __future__ import annotations

import io
import os
import pickle
from types import SimpleNamespace
from typing import Any

import numpy as np

from gan_registry import UserError

from ._common import check_labels

CLASSES = 10
_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's array rebuilder, wherever this NumPy version keeps it
_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")


class _Refused(pickle.UnpicklingError):
    """Something the format never holds, refused before it was called; pickle raises its parent for a cut file too."""


def _dtype(spec: Any, *args: Any) -> np.dtype:
    # Only plain numbers: a pickle's BUILD step could otherwise turn the dtype into one holding objects.
    if not (isinstance(spec, str) and np.dtype(spec).kind in "biuf"):
        raise _Refused(f"a dtype {spec!r}, which is not a plain number type")
    return np.dtype(spec)


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module in _MODULES and name == "_reconstruct":
            return _RECONSTRUCT
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return _dtype
        if module == "_codecs" and name == "encode":  # how protocol 2 stores bytes when Python 3 writes it
            return _latin1
        raise _Refused(f"{module}.{name}")


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise _Refused(f"_codecs.encode with {encoding!r}")
    return text.encode("latin1")


def _text(value: Any) -> Any:
    return value.decode("latin1") if isinstance(value, bytes) else value


def load_batch(path: str) -> dict[str, Any]:
    """One batch file as a dict with str keys; UserError for anything the format does not hold."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        entry = _BatchUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except _Refused as error:
        raise UserError(f"refused {path}: it is not a CIFAR-10 batch (it names {error}, which the format never"
                        " holds; loading it could run code, and nothing in it was run)") from None
    except Exception as error:
        raise UserError(f"could not read {path}: it is truncated or corrupt ({type(error).__name__}: {error});"
                        " replace it with the official file") from None
    if not isinstance(entry, dict):
        raise UserError(f"{path} is not a CIFAR-10 batch (a {type(entry).__name__}, not a dict)")
    return {_text(key): value for key, value in entry.items()}


def read_split(folder: str, names: list[str], meta_name: str) -> SimpleNamespace:
    """The images of the named batch files as uint8 (N, 32, 32, 3), their labels and the class names."""
    images, labels = [], []
    for name in names:
        path = os.path.join(folder, name)
        entry = load_batch(path)
        data = entry.get("data")
        if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
            raise UserError(f"{path} is not a CIFAR-10 batch: its 'data' is not rows of 3072 bytes")
        found = entry.get("labels", [])
        if not (isinstance(found, list) and len(found) == len(data) and all(isinstance(v, int) for v in found)):
            raise UserError(f"{path} is not a CIFAR-10 batch: its 'labels' are not one integer per image")
        check_labels(path, found, CLASSES)
        images.append(data)
        labels.extend(found)
    meta = load_batch(os.path.join(folder, meta_name))
    classes = [_text(name) for name in meta.get("label_names", [])]
    data = np.concatenate(images).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return SimpleNamespace(data=np.ascontiguousarray(data), targets=labels, classes=classes)
