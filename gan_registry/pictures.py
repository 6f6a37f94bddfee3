"""Pictures of the model itself (`gan sample --interpolate / --nearest`): walks between latent points, and samples
beside their nearest training images with the memorisation figures that go with them.

Layer: services and duties (docs/architecture.md).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import evaluation, export, generate, render
from ._components import standard_normal
from ._registry import Registry
from .evaluation import Features, ImageSet
from .errors import IncompatibleError, UserError
from .plugins import blame

WALK_STEPS = 8
"""Samples in a row of a walk: its two end points and the points between."""
WALK_ROWS = 8
GIF_TILES = 16
"""Walkers of a .gif (a 4 x 4 grid); a conditional one: 4 of each class."""
GIF_PER_CLASS = 4
LOOP_POINTS = 4
"""Latent points a .gif walks through before it is back where it started."""
NEAREST_ROWS, NEAREST_K = 8, 5
MEMORISATION_SAMPLES = 2500
"""Generated samples behind the FIDs and the distances of `--nearest` (`gan eval`'s default)."""
WALK_SUFFIXES = (".png", ".gif", ".pt", ".npy")


# -- interpolation ---------------------------------------------------------------------------------------
def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points on the straight lines from rows of `a` to rows of `b`, at fractions `t` (T,): (N, T, D)."""
    t = t.to(a.dtype)[None, :, None]
    return a[:, None] + t * (b - a)[:, None]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; for GAN latents White 2016) from rows of `a` to rows of `b`:
    (N, T, D). N(0, I) noise in many dimensions lies near the sphere of radius sqrt(D); a straight line between
    two such points dips towards the origin (to about 0.71 sqrt(D) midway), where the generator saw no noise."""
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1).clamp(-1, 1)
    omega = torch.arccos(cos)[:, None, None]
    t = t.to(a.dtype)[None, :, None]
    sin = torch.sin(omega)
    parallel = sin.abs() < 1e-6  # the arc is a line there, and its formula 0/0
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    arc = (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / safe
    return torch.where(parallel, lerp(a, b, t[0, :, 0]), arc)


def interpolation_for(prior: Any):
    """slerp for N(0, I) noise (truncated or not); a straight line for an objective's own prior, whose shape
    (a mixture, a box, ...) the sphere argument says nothing about."""
    return slerp if prior is standard_normal else lerp


# -- walks -----------------------------------------------------------------------------------------------
@dataclass
class Walk:
    """Samples of a walk, as (rows, steps, ...) for a picture or (frames, tiles, ...) for an animation."""

    samples: torch.Tensor
    value_range: tuple[float, float] | None
    latents: torch.Tensor
    labels: torch.Tensor | None
    per_row: int
    """Samples to a row of the picture (of a frame, for an animation)."""


def _row_classes(loaded: generate.Loaded, chosen: list[int] | None, rows: int) -> torch.Tensor | None:
    """The class of each row of a conditional walk: the classes asked (or every class) in turn."""
    if loaded.frequencies is None:
        return None
    classes = chosen if chosen is not None else list(range(len(loaded.frequencies)))
    return torch.tensor([classes[r % len(classes)] for r in range(rows)], dtype=torch.int64)


def _decoded(loaded: generate.Loaded, path: torch.Tensor, labels: torch.Tensor | None,
             own_truncation: float | None = None) -> torch.Tensor:
    """Samples of latent points (A, B, D), each point of row b of the class labels[b]: (A, B, ...)."""
    flat_labels = None if labels is None else labels.repeat(len(path))
    flat = generate.decode(loaded.generator, path.reshape(-1, path.shape[-1]), flat_labels, own_truncation)
    return flat.view(*path.shape[:2], *flat.shape[1:])


def walk_rows(loaded: generate.Loaded, rows: int, steps: int, seed: int, chosen: list[int] | None = None,
              truncation: float | None = None) -> Walk:
    """`rows` walks of `steps` samples, each from one latent point to another; the end points are the first
    2 * rows points `generate.draw` decodes with `seed` (starts, then ends), so the ends are its samples."""
    own = generate.own_truncation(loaded.generator, truncation)
    points = generate.latents(loaded.prior, loaded.latent_dim, 2 * rows, seed, None if own else truncation)
    path = interpolation_for(loaded.prior)(points[:rows], points[rows:], torch.linspace(0, 1, steps))
    labels = _row_classes(loaded, chosen, rows)
    samples = _decoded(loaded, path.transpose(0, 1), labels, own).transpose(0, 1)
    return Walk(samples, loaded.value_range, path, labels, steps)


def walk_loop(loaded: generate.Loaded, tiles: int, steps: int, seed: int, chosen: list[int] | None = None,
              truncation: float | None = None) -> Walk:
    """Frames of `tiles` walkers, each through LOOP_POINTS latent points and back to the first, `steps` frames
    a leg: LOOP_POINTS * steps frames that loop without a jump."""
    own = generate.own_truncation(loaded.generator, truncation)
    points = generate.latents(loaded.prior, loaded.latent_dim, LOOP_POINTS * tiles, seed, None if own else truncation)
    points = points.view(LOOP_POINTS, tiles, -1)
    interpolate = interpolation_for(loaded.prior)
    fractions = torch.arange(steps) / steps  # the leg's end is the next leg's start
    legs = [interpolate(points[j], points[(j + 1) % LOOP_POINTS], fractions) for j in range(LOOP_POINTS)]
    path = torch.cat(legs, dim=1).transpose(0, 1)  # (frames, tiles, D)
    labels, per_row = generate.labels_for(loaded.frequencies, tiles, seed, chosen, for_metrics=False)
    per_row = per_row or math.ceil(math.sqrt(tiles))  # a row per class, else a square grid
    return Walk(_decoded(loaded, path, labels, own), loaded.value_range, path, labels, per_row)


def _per_class_or(loaded: generate.Loaded, chosen: list[int] | None, per_class: int, otherwise: int) -> int:
    """A default size: `per_class` for each class drawn where several are, else `otherwise`."""
    classes = chosen if chosen is not None else range(len(loaded.classes or ()))
    return per_class * len(classes) if len(classes) > 1 else otherwise


def walk(registry: Registry, source: Path, n: int | None, seed: int, out: Path | None = None,
         classes: tuple[str, ...] = (), steps: int | None = None, truncation: float | None = None) -> Walk:
    """`gan sample --interpolate`: a grid of walks (a row each, `n` // `steps` rows), written to `out` as
    .png/.pt/.npy, or a looping .gif of `n` walkers."""
    steps = WALK_STEPS if steps is None else steps
    if steps < 2:
        raise UserError(f"--interpolate-steps {steps}: a walk needs at least 2 steps (its two ends)")
    if n is not None and n < 1:
        raise UserError("-n must be at least 1")
    out = None if out is None else generate.output_path(out, WALK_SUFFIXES)
    loaded = generate.load_generator(registry, source)
    chosen = loaded.chosen_classes(classes, source)
    if out is not None and out.suffix.lower() == ".gif":
        tiles = n if n is not None else _per_class_or(loaded, chosen, GIF_PER_CLASS, GIF_TILES)
        drawn = walk_loop(loaded, tiles, steps, seed, chosen, truncation)
        if drawn.samples.dim() != 5:
            raise UserError(f"-o {out}: a .gif walk shows images, and {source} draws samples of shape "
                            f"{tuple(drawn.samples.shape[2:])}; use .png, .pt or .npy")
        render.save_animation(drawn.samples, out, drawn.value_range, drawn.per_row)
        return drawn
    rows = max(1, n // steps) if n is not None else _per_class_or(loaded, chosen, 1, WALK_ROWS)
    drawn = walk_rows(loaded, rows, steps, seed, chosen, truncation)
    if out is not None:
        generate.write_samples(drawn.samples.flatten(0, 1), out, drawn.value_range, per_row=drawn.per_row)
    return drawn


# -- nearest neighbours ----------------------------------------------------------------------------------
def pairwise_l2(queries: torch.Tensor, keys: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Euclidean distances (Q, K), a chunk of queries at a time (a 50,000-image reference stays in memory)."""
    return torch.cat([torch.cdist(queries[i:i + chunk].double(), keys.double()).float()
                      for i in range(0, len(queries), chunk)])


@dataclass
class TrainingNeighbours:
    """A run's training images and their features under the run's evaluation extractor."""

    evaluator: Any
    images: Any
    """The training split as `evaluation.reference_of` gives it (an ImageSet)."""
    features: torch.Tensor

    @classmethod
    def of_run(cls, registry: Registry, plan: Any, extractor: str | None = None, device: str = "cpu"
               ) -> TrainingNeighbours:
        """The training split of the run's dataset, featured as `gan eval` features it (its default extractor,
        the cached reference features)."""
        train = _reference(plan, "train")
        evaluator = evaluation.Evaluator.choose(registry, ["fid"], {}, extractor, train,
                                                default_extractor=plan.dataset.extractor, device=device,
                                                seed=plan.settings.seed)
        return cls(evaluator, train, _featured(evaluator, evaluator.reference_features).features)

    def features_of(self, images: torch.Tensor, value_range: tuple[float, float] | None) -> torch.Tensor:
        return _featured(self.evaluator, lambda: self.evaluator.features(ImageSet(images, value_range, ""))).features

    def nearest(self, features: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The L2 distances and indices (Q, k) of the `k` training images nearest each row of `features`."""
        found = pairwise_l2(features, self.features).topk(k, dim=1, largest=False)
        return found.values, found.indices

    def image(self, index: int) -> torch.Tensor:
        return torch.as_tensor(self.images.images[index]).float()


def _reference(plan: Any, split: str, limit: int | None = None) -> Any:
    extra = {} if limit is None else {"limit": limit}
    return evaluation.reference_of(plan.dataset, plan.params["dataset"], plan.data, plan.settings.data_dir, split,
                                   **extra)


def _featured(evaluator: Any, extract):
    """`extract()` with a misfit extractor (a classifier for an unlabelled dataset, ...) as a one-line error."""
    try:
        return extract()
    except IncompatibleError as error:
        raise UserError(f"extractor '{evaluator.extractor.name}' does not apply here: {error}") from None


@dataclass
class Memorisation:
    """How close samples sit to the training images, against how close new images of the data do."""

    samples: int
    extractor: str
    fid_train: float
    train_describe: str
    fid_heldout: float | None = None
    heldout_describe: str | None = None
    distance_samples: float = float("nan")
    distance_heldout: float | None = None

    def lines(self) -> list[str]:
        lines = [f"memorisation ({self.samples:,} samples, {self.extractor} features):",
                 f"  FID vs {self.train_describe}: {self.fid_train:.2f}"]
        if self.fid_heldout is None:
            lines.append("  the dataset has no held-out split: no FID gap to show")
        else:
            lines += [f"  FID vs {self.heldout_describe}: {self.fid_heldout:.2f}",
                      f"  FID gap, held-out - training: {self.fid_heldout - self.fid_train:+.2f} (far above 0 would "
                      "mean that the samples resemble the training images more than new images of the data)"]
        distances = f"samples {self.distance_samples:.4g}"
        if self.distance_heldout is not None:
            ratio = self.distance_samples / max(self.distance_heldout, 1e-12)
            distances += (f", held-out images {self.distance_heldout:.4g} (ratio {ratio:.3g}; well below 1 "
                          "would mean that the samples sit closer to the training images than new images do)")
        return [*lines, f"  mean L2 distance to the nearest training image: {distances}"]


def _fid(evaluator: Any, fake: Any, reference: Any) -> float:
    """FID of features `fake` against a reference ImageSet, featured (and cached) as `gan eval` does."""
    against = dataclasses.replace(evaluator, reference=reference, _reference_features=None, _cached=False)
    metric = evaluator.metrics[0]
    real = _featured(evaluator, against.reference_features)
    try:
        with blame(metric, "evaluating the samples"):
            return float(metric.factory(evaluator.metric_params[metric.name])(fake, real)["fid"])
    except IncompatibleError as error:
        raise UserError(f"metric 'fid' does not apply here: {error}") from None


def memorisation(neighbours: TrainingNeighbours, plan: Any, fake: Any) -> Memorisation:
    """FID against the training split and against the held-out split, each of the same size (FID grows as its
    reference shrinks, so a gap between references of different sizes would measure their sizes), and the mean
    nearest-training distance of samples and of held-out images."""
    evaluator = neighbours.evaluator
    nearest_of = lambda features: neighbours.nearest(features, 1)[0][:, 0].mean().item()  # noqa: E731
    figures = Memorisation(len(fake.features), evaluator.extractor.name, float("nan"), "",
                           distance_samples=nearest_of(fake.features))
    if plan.data.load_heldout is None:
        figures.fid_train = _fid(evaluator, fake, neighbours.images)
        figures.train_describe = neighbours.images.describe
        return figures
    heldout = _reference(plan, "heldout")
    size = min(len(heldout), len(neighbours.images))
    train = _reference(plan, "train", size) if size < len(neighbours.images) else neighbours.images
    heldout = _reference(plan, "heldout", size) if size < len(heldout) else heldout
    figures.fid_train, figures.train_describe = _fid(evaluator, fake, train), train.describe
    figures.fid_heldout, figures.heldout_describe = _fid(evaluator, fake, heldout), heldout.describe
    heldout_features = _featured(evaluator, lambda: evaluator.features(heldout)).features
    figures.distance_heldout = nearest_of(heldout_features)
    return figures


@dataclass
class Nearest:
    """What `gan sample --nearest` found: the picture's rows and the memorisation figures."""

    path: Path
    distances: torch.Tensor
    """(rows, k) L2 distances of each sample's nearest training images, nearest first."""
    indices: torch.Tensor
    figures: Memorisation

    def lines(self) -> list[str]:
        rows, k = self.distances.shape
        return [f"wrote {self.path} ({rows} samples, each beside its {k} nearest training images; "
                f"L2 distance between {self.figures.extractor} features)", *self.figures.lines()]


def nearest(registry: Registry, source: Path, n: int | None, seed: int, out: Path, classes: tuple[str, ...] = (),
            k: int | None = None, extractor: str | None = None, truncation: float | None = None,
            device: str = "cpu") -> Nearest:
    """`gan sample --nearest`: `n` samples (a row each) beside their `k` nearest training images, and how much
    closer to the training images the samples are than held-out images."""
    rows, k = NEAREST_ROWS if n is None else n, NEAREST_K if k is None else k
    if rows < 1 or k < 1:
        raise UserError("-n and --nearest-k must be at least 1")
    if export.is_export(source):
        raise UserError(f"--nearest compares with the training images, which {source} does not hold; give the run "
                        "folder it was exported from")
    out = generate.output_path(out, (".png",))
    loaded = generate.load_generator(registry, source)
    plan = loaded.plan
    if len(plan.spec.sample_shape) != 3:
        raise UserError(f"--nearest compares images; {source} draws samples of shape {tuple(plan.spec.sample_shape)}")
    neighbours = TrainingNeighbours.of_run(registry, plan, extractor, device)
    drawn = generate.samples_of(registry, source, max(rows, MEMORISATION_SAMPLES), seed, classes, for_metrics=True,
                                truncation=truncation)
    fake = Features(neighbours.features_of(drawn.samples, drawn.value_range))
    distances, indices = neighbours.nearest(fake.features[:rows], k)
    picture = [torch.stack([drawn.samples[r], *(neighbours.image(i) for i in indices[r].tolist())])
               for r in range(rows)]
    render.save(torch.cat(picture), out, loaded.value_range, per_row=k + 1)
    return Nearest(out, distances, indices, memorisation(neighbours, plan, fake))

