"""Measuring generated images: feature extractors, cached reference features, and the protocol of each number.

A feature metric (FID, KID, ...) compares the features an extractor gives of generated images with those of
reference images. Reference features are computed once per (dataset, split, size, extractor) and cached as
safetensors in the user's cache: nothing in the cache is ever unpickled.

Layer: services and duties (docs/architecture.md).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file

from . import params as params_mod
from .params import in_group, spread_params
from ._components import ExtractorContext, Features, Stream, to_unit
from ._registry import Registry
from .checkpoint import preserved_rng
from .errors import IncompatibleError, PluginFailure, UserError
from .plugins import blame

DEFAULT_EXTRACTOR = "inception-v3"
"""The field's reference network, for datasets that name no extractor of their own."""
HELDOUT_LEAST = 10_000
"""A held-out split is the reference only from this size up (the FID-10k protocol); below it, the training split."""
REFERENCE_LIMIT = 50_000
"""At most this many reference images (the usual FID-50k protocol); a fixed random subset of larger splits."""
BATCH = 250
CACHE_FORMAT = 1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def cache_dir(*parts: str) -> Path:
    """gan-registry's folder in the user's cache ($GAN_REGISTRY_CACHE, else $XDG_CACHE_HOME/gan-registry)."""
    root = os.environ.get("GAN_REGISTRY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "gan-registry")
    return Path(root, *parts)


@dataclass
class ImageSet:
    """Images to measure (generated or real), in `value_range`: a tensor, or a dataset indexed one by one."""

    images: Any
    value_range: tuple[float, float] | None
    describe: str
    key: str | None = None
    """Names exactly these images for the reference cache; None: not cached (a folder, generated samples)."""
    data: Any = None
    """The DataSource they come from, where they come from a dataset."""
    data_key: str | None = None
    dataset: Any = None
    """The Dataset component, where they come from one."""
    labels: Any = None
    """Their class labels (int64, (N,)): a labelled dataset's, or those a conditional generator drew them for."""

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, size: int = BATCH) -> Iterator[torch.Tensor]:
        for start in range(0, len(self.images), size):
            stop = min(start + size, len(self.images))
            if isinstance(self.images, torch.Tensor):
                chunk = self.images[start:stop]
            else:
                chunk = torch.stack([torch.as_tensor(self.images[i]) for i in range(start, stop)])
            yield to_unit(chunk, self.value_range)


def dataset_key(dataset: Any, params: Any, data: Any, data_dir: str | None) -> str:
    """A text naming a dataset with its parameters, files and sample shape: what its features depend on."""
    origin = dataset.origin
    return json.dumps({"dataset": dataset.name, "distribution": origin.distribution if origin else None,
                       "version": origin.version if origin else None, "params": params_mod.as_dict(params),
                       "data_dir": data_dir, "shape": list(data.sample_shape)}, sort_keys=True)


def reference_of(dataset: Any, params: Any, data: Any, data_dir: str | None, split: str = "auto",
                 limit: int = REFERENCE_LIMIT) -> ImageSet:
    """The reference images of a dataset: its held-out split where that is large enough (or asked), else training."""
    if split not in ("auto", "train", "heldout"):
        raise UserError(f"--reference-split must be auto, train or heldout, got {split!r}")
    if len(data.sample_shape) != 3:
        raise IncompatibleError(f"image metrics need images; dataset '{dataset.name}' has samples of shape "
                                f"{tuple(data.sample_shape)}")
    heldout = None
    if split != "train" and data.load_heldout is not None:
        with blame(dataset, "loading its held-out data"):
            heldout = data.load_heldout()
    if split == "heldout" and heldout is None:
        raise UserError(f"dataset '{dataset.name}' has no held-out split; use --reference-split train")
    use_heldout = heldout is not None and (split == "heldout" or len(heldout) >= HELDOUT_LEAST)
    if use_heldout:
        images, name = heldout, "held-out"
    else:
        with blame(dataset, "loading its data"):
            images, name = data.load(), "training"
    load_labels = data.load_heldout_labels if use_heldout else data.load_labels
    labels = None
    total = len(images)
    if isinstance(images, Stream):  # its first samples: a stream is read in order, and reading all is what it avoids
        with blame(dataset, "reading its stream"):
            images, labels = images.head(min(total, limit))
    elif load_labels is not None:
        with blame(dataset, "loading its labels"):
            labels = load_labels()
    if total > limit and len(images) > limit:  # a fixed subset, the same for every run and every extractor
        pick = torch.randperm(total, generator=torch.Generator().manual_seed(0))[:limit].sort().values
        images = images[pick] if isinstance(images, torch.Tensor) else torch.utils.data.Subset(images, pick.tolist())
        labels = None if labels is None else labels[pick]
    key_data = dataset_key(dataset, params, data, data_dir)
    size = f"{len(images):,} of {total:,}" if total > limit else f"{total:,}"
    return ImageSet(images, data.value_range, f"dataset '{dataset.name}', {name} split, {size} images",
                    key=json.dumps({"data": key_data, "split": name, "count": len(images)}, sort_keys=True),
                    data=data, data_key=key_data, dataset=dataset, labels=labels)


def read_image_folder(folder: Path, limit: int | None = None) -> ImageSet:
    """Every image file under `folder` (sorted by path), as uint8 values read by Pillow; one size for all."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"{folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    files = files[:limit] if limit else files
    arrays = []
    for path in files:
        try:
            with Image.open(path) as image:
                image = image.convert("L" if image.mode in ("1", "L", "I;16", "I") else "RGB")
                array = np.asarray(image)
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as error:
            raise UserError(f"cannot read image {path}: {error}") from None
        if arrays and array.shape != arrays[0].shape:
            raise UserError(f"images in {folder} differ in size or channels: {files[0].name} is "
                            f"{_shape_text(arrays[0])}, {path.name} is {_shape_text(array)}")
        arrays.append(array)
    stacked = torch.from_numpy(np.stack(arrays))
    images = stacked[:, None] if stacked.ndim == 3 else stacked.permute(0, 3, 1, 2)
    return ImageSet(images.contiguous(), (0.0, 255.0), f"folder {folder}, {len(files):,} images")


def _shape_text(array: Any) -> str:
    return f"{array.shape[1]}x{array.shape[0]}" + (" RGB" if array.ndim == 3 else " grey")


@dataclass
class Evaluator:
    """Chosen metrics with their parameters, the extractor they share, and the reference they compare with."""

    registry: Registry
    metrics: list[Any]
    metric_params: dict[str, Any]
    extractor: Any
    extractor_params: Any
    reference: ImageSet | None
    device: Any = "cpu"
    seed: int = 0
    _built: Any = field(default=None, repr=False)
    _reference_features: Features | None = field(default=None, repr=False)
    _cached: bool = False

    @classmethod
    def choose(cls, registry: Registry, metric_names: list[str] | tuple[str, ...], params: dict[str, dict[str, Any]],
               extractor_name: str | None, reference: ImageSet | None, default_extractor: str | None = None,
               device: Any = "cpu", seed: int = 0) -> Evaluator:
        """Resolve names and `-p metric.*`/`-p extractor.*` values; refuses unknown ones before any work."""

        metrics = ([registry.get("metric", m) for m in metric_names] if metric_names
                   else registry.components("metric"))
        spread = spread_params(params.get("metric", {}), {m.name: m for m in metrics}, in_group("metric"))
        built = {m.name: params_mod.build(m.params, spread[m.name], f"metric '{m.name}'") for m in metrics}
        extractor = extractor_params = None
        if any(m.inputs == "features" for m in metrics):
            extractor = registry.get("extractor", extractor_name or default_extractor or DEFAULT_EXTRACTOR)
            extractor_params = params_mod.build(extractor.params, params.get("extractor", {}),
                                                f"extractor '{extractor.name}'")
        elif params.get("extractor"):
            raise UserError("-p extractor.*: none of the chosen metrics uses a feature extractor")
        return cls(registry, metrics, built, extractor, extractor_params, reference, device, seed)

    # -- features ---------------------------------------------------------------------------
    def built_extractor(self) -> Any:
        if self._built is None:
            reference = self.reference
            context = ExtractorContext(device=torch.device(self.device), cache_dir=cache_dir("extractors"),
                                       data=reference.data if reference else None,
                                       data_key=reference.data_key if reference else None, seed=self.seed)
            with preserved_rng(), blame(self.extractor, "building the feature extractor"):
                built = self.extractor.factory(self.extractor_params, context)
            for member in ("extract", "protocol", "cache_key"):
                if not hasattr(built, member):
                    raise PluginFailure(f"extractor '{self.extractor.name}' from {self.extractor.origin} broke its "
                                        f"contract: what its factory returned has no '{member}'")
            self._built = built
        return self._built

    def features(self, images: ImageSet) -> Features:
        """Features of a set of images, batched under inference mode on the evaluator's device."""
        extractor = self.built_extractor()
        features, logits = [], []
        with torch.inference_mode(), blame(self.extractor, "extracting features"):
            for batch in images.batches():
                out = extractor.extract(batch.to(self.device))
                found = out.get("features") if isinstance(out, dict) else None
                if not isinstance(found, torch.Tensor) or found.ndim != 2 or len(found) != len(batch):
                    raise PluginFailure(
                        f"extractor '{self.extractor.name}' from {self.extractor.origin} broke its contract: extract()"
                        f" of {len(batch)} images must return {{'features': a ({len(batch)}, D) tensor, ...}}")
                features.append(found.float().cpu())
                if out.get("logits") is not None:
                    logits.append(out["logits"].float().cpu())
        return Features(torch.cat(features), torch.cat(logits) if logits else None, images.labels)

    def _cache_file(self) -> tuple[Path, str] | None:
        if self.reference is None or self.reference.key is None:
            return None
        key = json.dumps({"format": CACHE_FORMAT, "images": self.reference.key, "extractor": self.extractor.name,
                          "params": params_mod.as_dict(self.extractor_params),
                          "network": str(self.built_extractor().cache_key)}, sort_keys=True)
        return cache_dir("reference", self.extractor.name) / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.safetensors", key

    def reference_features(self) -> Features:
        if self._reference_features is not None:
            return self._reference_features
        if self.reference is None:
            raise UserError("feature metrics need reference images: give --real")
        cached = self._cache_file()
        if cached is not None and cached[0].is_file():
            found = _read_cached(*cached)
            if found is not None:
                found = Features(found.features, found.logits, self.reference.labels)
                self._reference_features, self._cached = found, True
                return found
        features = self.features(self.reference)
        if cached is not None:
            _write_cached(cached[0], cached[1], features)
        self._reference_features = features
        return features

    # -- measuring --------------------------------------------------------------------------
    def protocol(self, generated: str, with_features: bool = True) -> dict[str, Any]:
        protocol: dict[str, Any] = {"generated": generated}
        if self.extractor is not None and with_features and self.reference is not None:
            reference = self.reference.describe if self.reference else None
            protocol.update(reference=reference + (" (features cached)" if self._cached else ""),
                            extractor=self.extractor.name, **dict(self.built_extractor().protocol))
        return protocol

    def measure(self, fake: ImageSet, samples: torch.Tensor | None = None, data: Any = None,
                required: bool = True, gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, Any]:
        """Every chosen metric on these generated images: {"metrics", "skipped", "protocol"}.

        Sample metrics get `samples` (in the data's value range) and `data`; feature metrics the features of
        `fake` and of the reference. A metric that does not apply is an error when `required`, else skipped.
        `gather` (a distributed run's evaluation): `fake` is this rank's share of the images, `fake.labels` those
        of all of them, and `gather` joins each rank's features in rank order.
        """
        results: dict[str, Any] = {}
        skipped: dict[str, str] = {}
        fake_features = None
        for metric in self.metrics:
            try:
                with blame(metric, "evaluating the samples"):
                    measure = metric.factory(self.metric_params[metric.name])
                    if metric.inputs == "features":
                        if self.reference is None:
                            raise IncompatibleError("it compares images, and these samples are not images")
                        if fake_features is None:
                            fake_features = self.features(fake)
                            if gather is not None:
                                logits = fake_features.logits
                                fake_features = Features(gather(fake_features.features),
                                                         None if logits is None else gather(logits), fake.labels)
                        results[metric.name] = measure(fake_features, self.reference_features())
                    else:
                        if samples is None or data is None:
                            raise IncompatibleError("it measures a run's samples against its dataset; give a run "
                                                    "and a dataset, or use a feature metric")
                        results[metric.name] = measure(samples, data)
            except IncompatibleError as error:
                if required:
                    raise UserError(f"metric '{metric.name}' does not apply here: {error}") from None
                skipped[metric.name] = str(error)
        if not results:
            reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no metric plugins installed"
            raise UserError(f"no metric applies ({reasons})")
        return {"metrics": results, "skipped": skipped, "protocol": self.protocol(fake.describe, fake_features is not None)}


def _read_cached(path: Path, key: str) -> Features | None:
    try:
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("key") != key:
                return None  # a hash collision or an older format: recompute
            names = set(f.keys())
            return Features(f.get_tensor("features"), f.get_tensor("logits") if "logits" in names else None)
    except (SafetensorError, OSError, KeyError, ValueError):
        return None  # a damaged cache file is recomputed, never trusted


def _write_cached(path: Path, key: str, features: Features) -> None:
    tensors = {"features": features.features.contiguous()}
    if features.logits is not None:
        tensors["logits"] = features.logits.contiguous()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file(tensors, str(tmp), metadata={"key": key})
        os.replace(tmp, path)
    except OSError as error:  # a read-only or full cache costs time next run, not this result
        warnings.warn(f"could not cache reference features in {path.parent}: {error.strerror or error}", stacklevel=2)


def for_plan(registry: Registry, plan: Any) -> Evaluator:
    """What --eval-every measures, checked before training: names, parameters, the direction of the first."""
    s = plan.settings
    reference = None
    if len(plan.spec.sample_shape) == 3:
        reference = reference_of(plan.dataset, plan.params["dataset"], plan.data, s.data_dir)
    evaluator = Evaluator.choose(
        registry, s.eval_metrics or ["fid"], {k: s.params.get(k, {}) for k in ("metric", "extractor")}, s.extractor,
        reference, default_extractor=plan.dataset.extractor, seed=s.seed)
    first = evaluator.metrics[0]
    if first.better is None:
        raise UserError(f"--eval-metric {first.name} comes first and so picks best.pt, but it says not whether lower"
                        " or higher is better; put a metric that does first (e.g. fid)")
    return evaluator
