"""A trained generator as one shareable `.safetensors` file: weights plus what is needed to rebuild it.

The file holds only tensors and a string-to-string metadata table (JSON values), so opening one
runs no code. Rebuilding it needs the plugins that made it; a missing one is named with the
distribution to install.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Callable

from . import __version__, params as params_mod
from ._components import NetworkSpec, Needs
from ._registry import Registry
from .errors import UnknownComponentError, UserError
from .plugins import blame

FORMAT = "gan-registry-generator/1"
SUFFIX = ".safetensors"


@dataclasses.dataclass
class ExportedGenerator:
    """A generator rebuilt from an exported file, with its latent prior and data description."""

    generator: Any
    prior: Callable[..., Any]
    latent_dim: int
    sample_shape: tuple[int, ...]
    value_range: tuple[float, float] | None
    metadata: dict[str, str]
    classes: tuple[str, ...] | None = None
    """The class names of a conditional generator (`gan sample --class NAME`); None for an unconditional one."""
    class_frequencies: Any = None
    """How often each class occurred in its training data (float tensor), what unasked labels are drawn with."""


def is_export(path: Path) -> bool:
    return Path(path).suffix == SUFFIX


def export(registry: Registry, run_dir: Path, out: Path, *, force: bool = False) -> Path:
    """Write the run's generator (weights of its last checkpoint) and its description to `out`."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    from .runs import load_networks

    out = Path(out)
    if out.suffix != SUFFIX:
        raise UserError(f"-o {out}: an export is a {SUFFIX} file")
    if out.is_dir():
        raise UserError(f"-o {out} is a folder; give a file name ending in {SUFFIX}")
    if out.exists() and not force:
        raise UserError(f"-o {out} exists; pass --force to overwrite it")
    plan, networks = load_networks(registry, run_dir)
    record = plan.component_record()
    uses_objective_prior = getattr(plan.build_objective(), "sample_latent", None)
    metadata = {
        "format": FORMAT,
        "gan_registry": __version__,
        "generator": json.dumps(record["generator"]),
        "objective": json.dumps(record["objective"]),
        "dataset": json.dumps(record["dataset"]),
        "prior": "objective" if uses_objective_prior else "standard-normal",
        "latent_dim": str(plan.latent_dim),
        "sample_shape": json.dumps(list(plan.spec.sample_shape)),
        "value_range": json.dumps(list(plan.spec.value_range) if plan.spec.value_range else None),
        "needs": json.dumps(dataclasses.asdict(plan.spec.needs)),
    }
    if plan.classes:
        metadata["classes"] = json.dumps(list(plan.classes))
        metadata["class_frequencies"] = json.dumps(plan.class_frequencies().tolist())
    tensors = {key: value.detach().cpu().contiguous() for key, value in networks["generator"].state_dict().items()}
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, out)
    except (OSError, SafetensorError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else " ".join(str(error).split())
        raise UserError(f"could not write {out}: {reason}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _component(registry: Registry, kind: str, record: dict[str, Any], path: Path):
    try:
        return registry.get(kind, record["name"])
    except UnknownComponentError:
        dist = record.get("distribution")
        install = f"; install {dist} (it was exported with {dist} {record.get('version')})" if dist else ""
        raise UserError(f"{path} needs the {kind} '{record['name']}', which no installed plugin provides{install}") \
            from None


def _read(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise UserError(f"no exported generator at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise UserError(f"{path} is not a readable safetensors file ({' '.join(str(error).split())})") from None
    if metadata.get("format") != FORMAT:
        raise UserError(f"{path} is not a generator exported by `gan export` (format {FORMAT})")
    return tensors, metadata


def load(registry: Registry, path: Path) -> ExportedGenerator:
    """Rebuild the generator of an exported file, in eval mode, on the CPU."""
    from ._components import latent_sampler, standard_normal

    path = Path(path)
    tensors, metadata = _read(path)
    try:
        record = json.loads(metadata["generator"])
        latent_dim = int(metadata["latent_dim"])
        sample_shape = tuple(json.loads(metadata["sample_shape"]))
        value_range = json.loads(metadata["value_range"])
        known = {f.name for f in dataclasses.fields(Needs)}
        needs = Needs(**{k: v for k, v in json.loads(metadata["needs"]).items() if k in known})
        prior = standard_normal
        if metadata["prior"] == "objective":
            objective_record = json.loads(metadata["objective"])
            objective = _component(registry, "objective", objective_record, path)
            objective_params = params_mod.build(objective.params, objective_record["params"],
                                                f"objective '{objective.name}'")
            with blame(objective, "building the objective"):
                prior = latent_sampler(objective.factory(objective_params))
        if not (isinstance(record, dict) and isinstance(record.get("name"), str) and isinstance(record.get("params"), dict)):
            raise ValueError("the generator record needs a name and params")
        if value_range is not None and not (isinstance(value_range, list) and len(value_range) == 2):
            raise ValueError(f"value_range {value_range!r} is not [low, high]")
        if latent_dim < 1 or not all(isinstance(d, int) and d > 0 for d in sample_shape):
            raise ValueError("latent_dim and sample_shape must be positive integers")
        classes = json.loads(metadata["classes"]) if "classes" in metadata else None
        frequencies = json.loads(metadata["class_frequencies"]) if classes else None
        if classes is not None and not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)
                                        and isinstance(frequencies, list) and len(frequencies) == len(classes)
                                        and all(isinstance(f, (int, float)) and f >= 0 for f in frequencies)
                                        and sum(frequencies) > 0):
            raise ValueError("classes must be names, with a non-negative frequency each")
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"{path}: its metadata is incomplete or damaged ({type(error).__name__}: {error})") from None
    component = _component(registry, "generator", record, path)
    params = params_mod.build(component.params, record["params"], f"generator '{component.name}'")
    spec = NetworkSpec(sample_shape, latent_dim, tuple(value_range) if value_range else None, needs,
                       len(classes) if classes else None)
    with blame(component, "building the generator"):
        generator = component.factory(params, spec)
    try:
        generator.load_state_dict(tensors)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise UserError(f"{path}: its weights do not fit generator '{component.name}' as installed now ({first})") \
            from None
    generator.eval()
    import torch

    return ExportedGenerator(generator, prior, latent_dim, sample_shape, spec.value_range, metadata,
                             tuple(classes) if classes else None,
                             torch.tensor(frequencies, dtype=torch.float32) if classes else None)
