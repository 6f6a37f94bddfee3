"""classifier: a small conv net trained on the reference dataset's own labels, its penultimate layer as features.

The offline extractor: no download, and fast on a CPU (Inception-v3 runs at a few images/s on two cores).
Trained once per (dataset, size, seed, steps) and cached as safetensors with its test accuracy; the same
inputs train the same network again.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from gan_registry import Extractor, IncompatibleError, Stream, hookimpl, to_unit

VERSION = 1  # of the network and its training: a change retrains every cached classifier
FEATURE_WIDTH = 128
TRAIN_LIMIT = 60_000


@dataclass
class ClassifierParams:
    steps: int = field(default=1500, metadata={"help": "training steps of 64 images (Adam, lr 1e-3)"})


def network(channels: int, classes: int):
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, FEATURE_WIDTH, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(FEATURE_WIDTH, classes),
    )


@contextmanager
def _exclusive(lock_path):
    """Hold an exclusive lock on `lock_path` (POSIX flock; elsewhere no lock, and at worst two trainings)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _labelled(load, load_labels, limit: int):
    """The first `limit` images and their labels; a Stream's labels come with its samples."""
    import torch

    images = load()
    if isinstance(images, Stream):
        return images.head(min(len(images), limit))
    labels = load_labels()[:limit].long()
    if isinstance(images, torch.Tensor):
        return images[:limit], labels
    return torch.stack([torch.as_tensor(images[i]) for i in range(min(len(images), limit))]), labels


def _accuracy(net, images, labels) -> float:
    import torch

    with torch.inference_mode():
        hits = sum(int((net(images[i:i + 500]).argmax(1) == labels[i:i + 500]).sum())
                   for i in range(0, len(images), 500))
    return hits / len(images)


def train(data, steps: int, seed: int, device):
    """The network trained on `data`'s labels, and its accuracy on held-out images (with how many)."""
    import torch

    images, labels = _labelled(data.load, data.load_labels, TRAIN_LIMIT)
    images = to_unit(images, data.value_range)
    if data.load_heldout is not None and data.load_heldout_labels is not None:
        test_images, test_labels = _labelled(data.load_heldout, data.load_heldout_labels, 10_000)
        test_images = to_unit(test_images, data.value_range)
    else:  # no held-out split: keep the last tenth of the training images for the accuracy
        cut = len(images) - max(1, len(images) // 10)
        images, test_images, labels, test_labels = images[:cut], images[cut:], labels[:cut], labels[cut:]
    torch.manual_seed(seed)
    net = network(images.shape[1], len(data.classes)).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    images, labels = images.to(device), labels.to(device)
    say = _Say(steps, len(images))
    for step in range(steps):
        say.step(step)
        pick = torch.randint(len(images), (64,), generator=g).to(device)
        loss = torch.nn.functional.cross_entropy(net(images[pick]), labels[pick])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    net.eval()
    return net, _accuracy(net, test_images.to(device), test_labels.to(device)), len(test_images)


class _Say:
    """Lines on stderr while the classifier trains: it runs once per dataset, for about a minute on a CPU, and a
    command that is silent that long looks hung."""

    def __init__(self, steps: int, images: int) -> None:
        self.steps, self.began, self.last = steps, time.monotonic(), time.monotonic()
        print(f"training the classifier for the FID features on {images:,} labelled images, once ({steps:,} steps; "
              "cached for every later evaluation)...", file=sys.stderr, flush=True)

    def step(self, step: int) -> None:
        now = time.monotonic()
        if step and (now - self.last >= 15 or step == 50):
            left = (now - self.began) / step * (self.steps - step)
            print(f"  classifier step {step:,}/{self.steps:,}, about {left:.0f} s left", file=sys.stderr, flush=True)
            self.last = now


class ClassifierFeatures:
    def __init__(self, params: ClassifierParams, context) -> None:
        import torch
        from safetensors.torch import load_file, save_file

        data = context.data
        if data is None or not data.classes or data.load_labels is None:
            raise IncompatibleError("the classifier trains on a dataset's labels, and the reference has none; "
                                    "give --real a labelled dataset (digits, mnist, ...) or use --extractor inception-v3")
        self.shape = tuple(data.sample_shape)
        key = json.dumps({"version": VERSION, "data": context.data_key, "seed": context.seed, "steps": params.steps},
                         sort_keys=True)
        self.cache_key = hashlib.sha256(key.encode()).hexdigest()[:16]
        path = context.cache_dir / "classifier" / f"{self.cache_key}.safetensors"
        self.net = network(self.shape[0], len(data.classes))
        cached = path.is_file() and self._read(path, key, load_file)
        if not cached:
            path.parent.mkdir(parents=True, exist_ok=True)
            with _exclusive(path.with_name(f".{path.name}.lock")):
                # Another process may have trained it while this one waited: two runs evaluating at once train once.
                cached = path.is_file() and self._read(path, key, load_file)
                if not cached:
                    net, accuracy, tested = train(data, params.steps, context.seed, "cpu")
                    self.net, self.accuracy, self.tested = net, accuracy, tested
                    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp),
                              metadata={"key": key, "accuracy": str(accuracy), "tested": str(tested)})
                    tmp.replace(path)
        self.net = self.net.to(context.device).eval().requires_grad_(False)
        self.body = self.net[:-1]
        height, width = self.shape[1:]
        self.protocol = {
            "network": f"a {FEATURE_WIDTH}-feature conv net trained on the dataset's labels ({params.steps} steps, "
                       f"seed {context.seed}; cached {path.name})",
            "test_accuracy": round(self.accuracy, 4), "tested_on": self.tested,
            "resize": f"none for {width}x{height} images like the dataset's; others bilinear (antialiased) to it",
        }

    def _read(self, path, key, load_file) -> bool:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            if meta.get("key") != key:
                return False
            self.net.load_state_dict(load_file(str(path)))
            self.accuracy, self.tested = float(meta["accuracy"]), int(meta["tested"])
            return True
        except Exception:  # a damaged or foreign cache file: train again
            return False

    def extract(self, images):
        import torch.nn.functional as F

        channels, height, width = self.shape
        if images.shape[1] != channels:
            images = images.mean(1, keepdim=True) if channels == 1 else images.expand(-1, channels, -1, -1)
        if tuple(images.shape[2:]) != (height, width):
            images = F.interpolate(images, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        features = self.body(images)
        return {"features": features, "logits": self.net[-1](features)}


@hookimpl
def register_extractors(register):
    register(Extractor(name="classifier", summary="a small conv net trained on the dataset's labels, cached "
                       "(offline; the default for digit-like data)", params=ClassifierParams, factory=ClassifierFeatures))
