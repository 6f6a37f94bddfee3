"""What a finished (or paused) run produces: samples, reconstructions, metric values."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import _conditioning, render
from ._registry import Registry
from .errors import IncompatibleError, UserError
from .plugins import blame
from .runs import load_networks
from ._components import latent_sampler

CHUNK = 1024


def draw(generator, prior, latent_dim: int, n: int, seed: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """`n` samples from noise drawn with `seed` (of the classes `labels`, for a conditional generator): the same
    for a run and for its exported generator."""
    g = torch.Generator().manual_seed(seed)
    chunks = []
    with torch.no_grad():
        for start in range(0, n, CHUNK):
            z = prior(min(CHUNK, n - start), latent_dim, "cpu", g)
            condition = () if labels is None else (labels[start:start + len(z)],)
            chunks.append(generator(z, *condition).float())
    return torch.cat(chunks)


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


def _generate(plan, networks, n: int, seed: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    prior = latent_sampler(plan.build_objective())
    return draw(networks["generator"], prior, plan.latent_dim, n, seed, labels)


def samples_of(registry: Registry, source: Path, n: int | None, seed: int, classes: tuple[str, ...] = (),
               for_metrics: bool = False) -> Drawn:
    """`n` samples from a run directory or a file written by `gan export` (of the `classes` named, by name or
    index, for a conditional one); None: 64, or a row of 8 for each class drawn."""
    from . import export

    if n is not None and n < 1:
        raise UserError("-n must be at least 1")
    if export.is_export(source):
        exported = export.load(registry, source)
        generator, prior, latent_dim = exported.generator, exported.prior, exported.latent_dim
        names, frequencies, value_range = exported.classes, exported.class_frequencies, exported.value_range
    else:
        plan, networks = load_networks(registry, source)
        generator, prior, latent_dim = networks["generator"], latent_sampler(plan.build_objective()), plan.latent_dim
        names, value_range = plan.classes, plan.spec.value_range
        frequencies = plan.class_frequencies() if names else None
    chosen = _conditioning.choose_classes(classes, names, source) if classes else None
    if n is None:  # a row for each class drawn; 64 where there is one row or none
        rows = chosen if chosen is not None else names or ()
        n = _conditioning.PER_ROW * len(rows) if len(rows) > 1 else 64
    labels, per_row = labels_for(frequencies, n, seed, chosen, for_metrics)
    return Drawn(draw(generator, prior, latent_dim, n, seed, labels), value_range, labels, per_row)


def sample(registry: Registry, source: Path, n: int | None, seed: int, out: Path, classes: tuple[str, ...] = ()
           ) -> Path:
    """Samples from a run directory, or from a generator file written by `gan export`, written to `out`; a
    conditional generator draws the `classes` asked, or a row of each class."""
    suffix = Path(out).suffix.lower()
    if suffix not in (".png", ".pt", ".npy"):
        raise UserError(f"-o {out}: use a .png, .pt or .npy file name")
    drawn = samples_of(registry, source, n, seed, classes)
    samples, value_range = drawn.samples, drawn.value_range
    out = Path(out)
    if out.is_dir():
        raise UserError(f"-o {out} is a folder; give a file name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"-o {out}: cannot make its folder ({error.strerror or error})") from None
    if suffix == ".png":
        render.save(samples, out, value_range, per_row=drawn.per_row)
    elif suffix == ".pt":
        torch.save(samples, out)
    else:
        import numpy as np

        np.save(out, samples.numpy())
    return out


def reconstruct(registry: Registry, run_dir: Path, n: int, seed: int, out: Path) -> tuple[Path, float]:
    """Write held-out inputs beside their reconstructions; returns the path and the mean L1 error."""
    if n < 1:
        raise UserError("-n must be at least 1")
    plan, networks = load_networks(registry, run_dir, average=False)  # the decoder trained with its encoder
    if "encoder" not in networks:
        raise UserError(f"{run_dir} has no encoder (architecture '{plan.architecture.name}'); nothing to reconstruct")
    if len(plan.spec.sample_shape) != 3:
        raise UserError(f"gan reconstruct draws images; {run_dir} has samples of shape {plan.spec.sample_shape}")
    data = plan.load_data(heldout=True)
    if not isinstance(data, torch.Tensor):
        data = torch.stack([data[i] for i in range(min(len(data), n))])
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    inputs = data[pick].float()
    with torch.no_grad():
        outputs = networks["generator"](networks["encoder"](inputs)).float()
    error = (outputs - inputs).abs().mean().item()
    out = Path(out)
    render.save_pairs(inputs, outputs, out, plan.spec.value_range)
    return out, error


def evaluate(registry: Registry, run_dir: Path, metrics: tuple[str, ...], n: int, seed: int,
             params: dict[str, Any] | None = None, *, extractor: str | None = None,
             extractor_params: dict[str, Any] | None = None, reference_split: str = "auto",
             checkpoint_name: str = "last.pt", device: str = "cpu") -> dict[str, Any]:
    """Run the named metrics (or every one that applies) on `n` samples; also saved to RUN_DIR/eval.json.

    `params` ({name: value}) go to each chosen metric that declares them (`gan eval -p metric.NAME=VALUE`),
    `extractor_params` to the feature extractor (`-p extractor.NAME=VALUE`). Feature metrics compare with the
    run's dataset: its held-out split where that is large enough (or `reference_split`), else its training split.
    """
    from . import evaluation

    plan, networks = load_networks(registry, run_dir, checkpoint_name=checkpoint_name)
    reference = None
    if len(plan.spec.sample_shape) == 3:
        reference = evaluation.reference_of(plan.dataset, plan.params["dataset"], plan.data, plan.settings.data_dir,
                                            reference_split)
    evaluator = evaluation.Evaluator.choose(
        registry, metrics, {"metric": params or {}, "extractor": extractor_params or {}}, extractor, reference,
        default_extractor=plan.dataset.extractor, device=device, seed=plan.settings.seed)
    labels = _conditioning.seeded_labels(plan.class_frequencies(), n, seed) if plan.classes else None
    samples = _generate(plan, networks, n, seed, labels)
    fake = evaluation.ImageSet(samples, plan.spec.value_range,
                               f"{n:,} samples of {run_dir} ({checkpoint_name}, seed {seed})", labels=labels)
    report = evaluator.measure(fake, samples, plan.data, required=bool(metrics))
    report = {"samples": n, "seed": seed, **report}
    (Path(run_dir) / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def image_source(registry: Registry, text: str, n: int, seed: int, dataset_params: dict[str, Any],
                 data_dir: str | None, reference_split: str) -> Any:
    """What `gan eval --real/--fake SRC` names: a run or exported generator (n samples drawn), a folder of
    images, or a dataset as NAME or NAME:train / NAME:heldout."""
    from . import evaluation, export
    from . import params as params_mod
    from ._components import DataContext

    path = Path(text).expanduser()
    if path.is_file() and export.is_export(path) or (path / "checkpoints" / "last.pt").is_file():
        drawn = samples_of(registry, path, n, seed, for_metrics=True)
        return evaluation.ImageSet(drawn.samples, drawn.value_range, f"{n:,} samples of {path} (seed {seed})",
                                   labels=drawn.labels)
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
            reference_split: str = "auto", device: str = "cpu") -> dict[str, Any]:
    """Feature metrics of any two image sources (`gan eval --real SRC --fake SRC`): ours or another framework's."""
    reference = image_source(registry, real, n, seed, params.get("dataset", {}), data_dir, reference_split)
    generated = image_source(registry, fake, n, seed, params.get("dataset", {}), data_dir, reference_split)
    from . import evaluation

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

