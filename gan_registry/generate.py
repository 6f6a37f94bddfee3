"""What a finished (or paused) run produces: samples, reconstructions, metric values.

Layer: services and duties (docs/architecture.md).
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import _card, _conditioning, checkpoint, evaluation, export, render
from . import params as params_mod
from ._registry import Registry
from .errors import UserError
from .plugins import blame
from .runs import load_networks
from ._components import DataContext, Stream, latent_sampler, standard_normal, to_values

CHUNK = 1024
MAX_SAMPLES = 1_000_000
"""The most samples one call draws (`gan sample -n`, `gan eval --samples`): they are held in memory together."""
MAX_IMAGES = 100_000
"""The most images one call draws or reads (5 GB of float32 at 3x64x64); `gan eval`'s 50,000 fit."""


def check_count(flag: str, n: int, sample_shape: tuple[int, ...] = ()) -> None:
    """Refuse a count of samples below 1, or more than one call can hold (images: MAX_IMAGES)."""
    if n < 1:
        raise UserError(f"{flag} must be at least 1")
    most, what = (MAX_IMAGES, "images") if len(sample_shape) == 3 else (MAX_SAMPLES, "samples")
    if n > most:
        raise UserError(f"{flag} {n}: at most {most} {what} per call (they are held in memory together)")


def non_finite(samples: torch.Tensor) -> str | None:
    """'N of M generated samples are not finite (...)' where some are, else None: NaN/inf weights make them."""
    bad = int((~torch.isfinite(samples.flatten(1))).any(1).sum())
    return f"{bad} of {len(samples)} generated samples are not finite (the weights hold NaN/inf?)" if bad else None


def truncated_normal(psi: float) -> Callable[..., torch.Tensor]:
    """BigGAN's truncation trick (Brock et al. 2019) as a prior: N(0, I) noise whose values beyond +-`psi` are
    drawn again until inside, from the same generator, so that a seed still names its samples."""
    def sample(n: int, latent_dim: int, device: Any, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, latent_dim, device=device, generator=generator)
        outside = z.abs() > psi
        while outside.any():
            z[outside] = torch.randn(int(outside.sum()), device=device, generator=generator)
            outside = z.abs() > psi
        return z

    return sample


def noise_prior(prior: Callable[..., torch.Tensor], truncation: float | None) -> Callable[..., torch.Tensor]:
    """The prior that samples are drawn from: the generator's own, or its truncation at `truncation` (psi)."""
    if truncation is None:
        return prior
    if not truncation > 0:  # also refuses nan
        raise UserError(f"--truncation {truncation:g}: PSI must be above 0 (e.g. 0.5)")
    if prior is not standard_normal:
        raise UserError("--truncation resamples N(0, I) noise, and this generator's objective draws its latents "
                        "from a prior of its own")
    return truncated_normal(truncation)


def latents(prior: Callable[..., torch.Tensor], latent_dim: int, n: int, seed: int,
            truncation: float | None = None) -> torch.Tensor:
    """The (n, latent_dim) noise that `draw` decodes: drawn in chunks from `seed` alone, on the CPU."""
    sampler = noise_prior(prior, truncation)
    g = torch.Generator().manual_seed(seed)
    return torch.cat([sampler(min(CHUNK, n - start), latent_dim, "cpu", g) for start in range(0, n, CHUNK)])


def truncates_itself(generator) -> bool:
    """Whether the generator offers a truncation of its own (`truncated(z, psi, condition=None)`, e.g. StyleGAN2's
    in w space), which `--truncation` then uses instead of resampling the noise."""
    return callable(getattr(generator, "truncated", None))


def decode(generator, z: torch.Tensor, labels: torch.Tensor | None = None, truncation: float | None = None
           ) -> torch.Tensor:
    """The generator's samples of noise `z` (of the classes `labels`), a chunk at a time; with `truncation`, through
    the generator's own truncation (see `truncates_itself`)."""
    chunks = []
    call = generator if truncation is None else (lambda z, *c: generator.truncated(z, truncation, *c))
    with torch.no_grad():
        for start in range(0, len(z), CHUNK):
            condition = () if labels is None else (labels[start:start + CHUNK],)
            chunks.append(call(z[start:start + CHUNK], *condition).float())
    return torch.cat(chunks)


def own_truncation(generator, truncation: float | None) -> float | None:
    """`truncation` where the generator truncates itself (checked as the noise's is), else None."""
    if truncation is None or not truncates_itself(generator):
        return None
    if not truncation > 0:
        raise UserError(f"--truncation {truncation:g}: PSI must be above 0 (e.g. 0.7)")
    return truncation


def draw(generator, prior, latent_dim: int, n: int, seed: int, labels: torch.Tensor | None = None,
         truncation: float | None = None) -> torch.Tensor:
    """`n` samples from noise drawn with `seed` (of the classes `labels`, for a conditional generator; truncated at
    psi `truncation` if given, by the generator itself where it offers a truncation, else in the noise): the same
    for a run and for its exported generator."""
    own = own_truncation(generator, truncation)
    z = latents(prior, latent_dim, n, seed, None if own is not None else truncation)
    return decode(generator, z, labels, own)


@dataclass
class Drawn:
    """Samples drawn for `gan sample` or a metric, with what they were conditioned on."""

    samples: torch.Tensor
    value_range: tuple[float, float] | None
    labels: torch.Tensor | None = None
    """Their class labels, for a conditional generator."""
    per_row: int | None = None
    """Samples per row of their grid: a class-per-row grid for a conditional generator."""


def labels_for(frequencies: torch.Tensor | None, n: int, seed: int, classes: list[int] | None,
               for_metrics: bool) -> tuple[torch.Tensor | None, int | None]:
    """The labels of `n` samples of a conditional generator (None for an unconditional one) and their grid's row
    length: for metrics drawn with the data's class frequencies; for a picture the `classes` asked (every class
    where none is), a row each; one class asked fills a square grid."""
    if frequencies is None:
        return None, None
    if classes is None:
        if for_metrics:
            return _conditioning.seeded_labels(frequencies, n, seed), None
        classes = list(range(len(frequencies)))
    per_row = math.ceil(n / len(classes))
    return _conditioning.rows_of_classes(classes, per_row)[:n], per_row if len(classes) > 1 else None


def _generate(plan, networks, n: int, seed: int, labels: torch.Tensor | None = None,
              truncation: float | None = None) -> torch.Tensor:
    prior = latent_sampler(plan.build_objective())
    return draw(networks["generator"], prior, plan.latent_dim, n, seed, labels, truncation)


@dataclass
class Loaded:
    """A generator to draw from, loaded from a run directory or a file written by `gan export`."""

    generator: Any
    prior: Callable[..., torch.Tensor]
    latent_dim: int
    sample_shape: tuple[int, ...]
    value_range: tuple[float, float] | None
    classes: tuple[str, ...] | None
    """The class names of a conditional generator; None for an unconditional one."""
    frequencies: torch.Tensor | None
    """How often each class occurred in its training data."""
    plan: Any = None
    """The run's plan (None for an exported file): its dataset, for what compares samples with the data."""

    def chosen_classes(self, asked: tuple[str, ...], source: Path) -> list[int] | None:
        """The class indices of `--class` (names or indices); None where none is asked."""
        return _conditioning.choose_classes(asked, self.classes, source) if asked else None


def load_generator(registry: Registry, source: Path) -> Loaded:
    """The generator of a run directory (its average where it keeps one) or of a `gan export` file."""
    if export.is_export(source):
        exported = export.load(registry, source)
        return Loaded(exported.generator, exported.prior, exported.latent_dim, exported.sample_shape,
                      exported.value_range, exported.classes, exported.class_frequencies)
    plan, networks = load_networks(registry, source)
    frequencies = plan.class_frequencies() if plan.classes else None
    return Loaded(networks["generator"], latent_sampler(plan.build_objective()), plan.latent_dim,
                  tuple(plan.spec.sample_shape), plan.spec.value_range, plan.classes, frequencies, plan)


def weights_file(source: Path, checkpoint_name: str = "last.pt") -> Path:
    """The file whose weights a run directory's or an exported generator's samples come from."""
    if export.is_folder(source):
        return Path(source) / export.WEIGHTS_NAME
    return Path(source) if export.is_export(source) else Path(source) / "checkpoints" / checkpoint_name


def samples_of(registry: Registry, source: Path, n: int | None, seed: int, classes: tuple[str, ...] = (),
               for_metrics: bool = False, truncation: float | None = None, flag: str = "-n") -> Drawn:
    """`n` samples from a run directory or a file written by `gan export` (of the `classes` named, by name or
    index, for a conditional one; from noise truncated at psi `truncation` if given); None: 64, or a row of 8 for
    each class drawn. Samples that are not finite are refused `for_metrics`, else warned of."""
    if n is not None:
        check_count(flag, n)
    return drawn_from(load_generator(registry, source), source, n, seed, classes, for_metrics, truncation, flag)


def drawn_from(loaded: Loaded, source: Path, n: int | None, seed: int, classes: tuple[str, ...] = (),
               for_metrics: bool = False, truncation: float | None = None, flag: str = "-n") -> Drawn:
    """`samples_of` a generator already loaded (from `source`)."""
    chosen = loaded.chosen_classes(classes, source)
    if n is None:  # a row for each class drawn; 64 where there is one row or none
        rows = chosen if chosen is not None else loaded.classes or ()
        n = _conditioning.PER_ROW * len(rows) if len(rows) > 1 else 64
    check_count(flag, n, loaded.sample_shape)
    labels, per_row = labels_for(loaded.frequencies, n, seed, chosen, for_metrics)
    samples = draw(loaded.generator, loaded.prior, loaded.latent_dim, n, seed, labels, truncation)
    problem = non_finite(samples)
    if problem and for_metrics:
        raise UserError(f"{weights_file(source)}: {problem}; no metric is measured on them")
    if problem:
        warnings.warn(f"{problem}; written as they are (from {weights_file(source)})")
    return Drawn(samples, loaded.value_range, labels, per_row)


SAMPLE_SUFFIXES = (".png", ".pt", ".npy")


def output_name(out: Path, suffixes: tuple[str, ...] = SAMPLE_SUFFIXES) -> Path:
    """`-o` checked: a file name with one of `suffixes`."""
    out = Path(out)
    if out.suffix.lower() not in suffixes:
        names = " or ".join(filter(None, (", ".join(suffixes[:-1]), suffixes[-1])))
        raise UserError(f"-o {out}: use a {names} file name")
    if out.is_dir():
        raise UserError(f"-o {out} is a folder; give a file name")
    return out


def output_path(out: Path, suffixes: tuple[str, ...] = SAMPLE_SUFFIXES) -> Path:
    """`-o` checked (a file name with one of `suffixes`) and its folder made."""
    out = output_name(out, suffixes)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"-o {out}: cannot make its folder ({error.strerror or error})") from None
    return out


def write_samples(samples: torch.Tensor, out: Path, value_range: tuple[float, float] | None,
                  per_row: int | None = None) -> Path:
    """Samples written as `gan sample` writes them: a .png picture, or raw .pt/.npy values; never half of one, and
    a failed write (a full disk) exits 1."""
    suffix = out.suffix.lower()
    with checkpoint.replacing(out, str(out), kept="", suffix=f".tmp{suffix}") as (f, tmp):
        if suffix == ".png":
            render.save(samples, tmp, value_range, per_row=per_row)  # by name: the suffix says the format
        elif suffix == ".pt":
            torch.save(samples, f)
        else:
            np.save(f, samples.numpy())
    return out


def sample(registry: Registry, source: Path, n: int | None, seed: int, out: Path, classes: tuple[str, ...] = (),
           truncation: float | None = None) -> Path:
    """Samples from a run directory, or from a generator file written by `gan export`, written to `out`; a
    conditional generator draws the `classes` asked, or a row of each."""
    out = output_name(out)
    drawn = samples_of(registry, source, n, seed, classes, truncation=truncation)
    return write_samples(drawn.samples, output_path(out), drawn.value_range, drawn.per_row)


def reconstruct(registry: Registry, run_dir: Path, n: int, seed: int, out: Path) -> tuple[Path, float]:
    """Write held-out inputs beside their reconstructions; returns the path and the mean L1 error."""
    out = output_name(out, (".png",))
    check_count("-n", n)
    plan, networks = load_networks(registry, run_dir, average=False)  # the decoder trained with its encoder
    if "encoder" not in networks:
        raise UserError(f"{run_dir} has no encoder (architecture '{plan.architecture.name}'); nothing to reconstruct")
    if len(plan.spec.sample_shape) != 3:
        raise UserError(f"gan reconstruct draws images; {run_dir} has samples of shape {plan.spec.sample_shape}")
    check_count("-n", n, plan.spec.sample_shape)
    data = plan.load_data(heldout=True)
    if isinstance(data, Stream):
        data = data.head(n)[0]
    elif not isinstance(data, torch.Tensor):
        data = torch.stack([torch.as_tensor(data[i]) for i in range(min(len(data), n))])
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    inputs = to_values(data[pick], plan.data.value_range).float()
    with torch.no_grad():
        outputs = networks["generator"](networks["encoder"](inputs)).float()
    error = (outputs - inputs).abs().mean().item()
    with checkpoint.replacing(output_path(out, (".png",)), str(out), kept="", suffix=".tmp.png") as (_, tmp):
        render.save_pairs(inputs, outputs, tmp, plan.spec.value_range)
    return out, error


def evaluate(registry: Registry, run_dir: Path, metrics: tuple[str, ...], n: int, seed: int,
             params: dict[str, Any] | None = None, *, extractor: str | None = None,
             extractor_params: dict[str, Any] | None = None, reference_split: str = "auto",
             checkpoint_name: str = "last.pt", device: str = "cpu", truncation: float | None = None) -> dict[str, Any]:
    """Run the named metrics (or every one that applies) on `n` samples (drawn from noise truncated at psi
    `truncation` if given); also saved to RUN_DIR/eval.json.

    `params` ({name: value}) go to each chosen metric that declares them (`gan eval -p metric.NAME=VALUE`),
    `extractor_params` to the feature extractor (`-p extractor.NAME=VALUE`). Feature metrics compare with the
    run's dataset: its held-out split where that is large enough (or `reference_split`), else its training split.
    """
    check_count("--samples", n)
    plan, networks = load_networks(registry, run_dir, checkpoint_name=checkpoint_name)
    check_count("--samples", n, plan.spec.sample_shape)
    reference = None
    if len(plan.spec.sample_shape) == 3:
        reference = evaluation.reference_of(plan.dataset, plan.params["dataset"], plan.data, plan.settings.data_dir,
                                            reference_split)
    evaluator = evaluation.Evaluator.choose(
        registry, metrics, {"metric": params or {}, "extractor": extractor_params or {}}, extractor, reference,
        default_extractor=plan.dataset.extractor, device=device, seed=plan.settings.seed)
    labels = _conditioning.seeded_labels(plan.class_frequencies(), n, seed) if plan.classes else None
    samples = _generate(plan, networks, n, seed, labels, truncation)
    problem = non_finite(samples)
    if problem:
        raise UserError(f"{weights_file(run_dir, checkpoint_name)}: {problem}; no metric is measured on them")
    fake = evaluation.ImageSet(samples, plan.spec.value_range,
                               f"{n:,} samples of {run_dir} ({checkpoint_name}, seed {seed}{_truncated(truncation)})",
                               labels=labels)
    report = evaluator.measure(fake, samples, plan.data, required=bool(metrics))
    report = {"samples": n, "seed": seed, **({"truncation": truncation} if truncation is not None else {}), **report}
    # Which weights were measured: a model card states these numbers only for the checkpoint they are of.
    measured = {"name": checkpoint_name, "sha256": _card.sha256_file(weights_file(run_dir, checkpoint_name))}
    path = Path(run_dir) / "eval.json"
    with checkpoint.replacing(path, str(path), kept="") as (f, _):
        f.write((json.dumps({**report, "checkpoint": measured}, indent=2) + "\n").encode())
    return report


def _truncated(truncation: float | None) -> str:
    return "" if truncation is None else f", truncation psi {truncation:g}"


def image_source(registry: Registry, text: str, n: int, seed: int, dataset_params: dict[str, Any],
                 data_dir: str | None, reference_split: str, truncation: float | None = None) -> Any:
    """What `gan eval --real/--fake SRC` names: a run or exported generator (n samples drawn, from noise truncated
    at psi `truncation` if given), a folder of images, or a dataset as NAME or NAME:train / NAME:heldout."""
    path = Path(text).expanduser()
    if export.is_export(path) and path.exists() or (path / "checkpoints" / "last.pt").is_file():
        drawn = samples_of(registry, path, n, seed, for_metrics=True, truncation=truncation, flag="--samples")
        return evaluation.ImageSet(drawn.samples, drawn.value_range,
                                   f"{n:,} samples of {path} (seed {seed}{_truncated(truncation)})",
                                   labels=drawn.labels)
    if truncation is not None:
        raise UserError(f"--truncation draws from a generator; {text} is not a run or a `gan export` file")
    if path.is_dir():
        return evaluation.read_image_folder(path)
    name, _, split = text.partition(":")
    if path.exists() or "/" in text:
        raise UserError(f"{text} is not a run folder, a file written by `gan export` or a folder of images")
    dataset = registry.get("dataset", name)
    values = params_mod.build(dataset.params, dataset_params, f"dataset '{dataset.name}'")
    with blame(dataset, "describing its data"):
        data = dataset.factory(values, DataContext(data_dir=data_dir, registry=registry))
    return evaluation.reference_of(dataset, values, data, data_dir, split or reference_split)


def compare(registry: Registry, real: str, fake: str, metrics: tuple[str, ...], n: int, seed: int,
            params: dict[str, dict[str, Any]], *, extractor: str | None = None, data_dir: str | None = None,
            reference_split: str = "auto", device: str = "cpu", truncation: float | None = None) -> dict[str, Any]:
    """Feature metrics of any two image sources (`gan eval --real SRC --fake SRC`): ours or another framework's;
    `truncation` truncates the noise of a generator given as --fake."""
    reference = image_source(registry, real, n, seed, params.get("dataset", {}), data_dir, reference_split)
    generated = image_source(registry, fake, n, seed, params.get("dataset", {}), data_dir, reference_split,
                             truncation)

    default = reference.dataset.extractor if reference.dataset is not None else None
    evaluator = evaluation.Evaluator.choose(registry, metrics, params, extractor, reference,
                                            default_extractor=default, device=device, seed=seed)
    chosen_sample_metrics = [m.name for m in evaluator.metrics if m.inputs != "features"]
    if metrics and chosen_sample_metrics:
        raise UserError(f"--real/--fake compare images by their features; metric '{chosen_sample_metrics[0]}' "
                        "measures a run's samples (give the run folder instead)")
    evaluator.metrics = [m for m in evaluator.metrics if m.inputs == "features"]
    if not evaluator.metrics:
        raise UserError("no feature metric is installed (pip install gan-registry-image-metrics)")
    return {"samples": len(generated), "seed": seed, **evaluator.measure(generated, required=bool(metrics))}

