"""A trained generator as one shareable `.safetensors` file: weights plus what is needed to rebuild it; or a folder
of it (model.safetensors), its config.json and its model card (README.md), which must agree to be loaded.

The file holds only tensors and a string-to-string metadata table (JSON values), so opening one
runs no code. Rebuilding it needs the plugins that made it; a missing one is named with the
distribution to install.

Layer: services and duties (docs/architecture.md).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from . import _card
from . import params as params_mod
from ._version import __version__
from ._components import NetworkSpec, Needs, latent_sampler, standard_normal
from ._registry import Registry
from ._files import read_text
from .checkpoint import open_user_file, replacing, shown
from .errors import UnknownComponentError, UserError
from .plugins import blame
from .runs import load_networks

FORMAT = "gan-registry-generator/1"
SUFFIX = ".safetensors"
FOLDER_FORMAT = "gan-registry-export/1"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CONFIG_LIMIT = 1 << 22
"""Bytes an export folder's config.json may have: ours has a few thousand."""


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
    """A generator file or folder written by `gan export` (by its name; loading checks the rest)."""
    return Path(path).suffix == SUFFIX or is_folder(path)


def generator_file(plan: Any, networks: dict[str, Any]) -> bytes:
    """The safetensors bytes of a run's generator (its weights, as `load_networks` gave them) and its description."""
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
    return save(tensors, metadata=metadata)


def export(registry: Registry, run_dir: Path, out: Path, *, force: bool = False) -> Path:
    """Write the run's generator (weights of its last checkpoint) and its description to `out`."""
    out = Path(out)
    if out.suffix != SUFFIX:
        raise UserError(f"-o {out}: an export is a {SUFFIX} file, or a folder (end -o with /)")
    if out.is_dir():
        raise UserError(f"-o {out} is a folder; give a file name ending in {SUFFIX}, or end -o with / for a folder")
    if out.exists() and not force:
        raise UserError(f"-o {out} exists; pass --force to overwrite it")
    plan, networks = load_networks(registry, run_dir)
    data = generator_file(plan, networks)
    with replacing(out, str(out), kept="") as (f, _):  # a failed write, a full disk above all, exits 1
        f.write(data)
    return out


# -- a folder: weights, config.json and the model card --------------------------------------------------------------
def is_folder(path: Path) -> bool:
    """A folder written by `gan export -o DIR/` (or one that claims to be: `verify` says whether it is)."""
    path = Path(path)
    return path.is_dir() and (path / WEIGHTS_NAME).exists() and not (path / "checkpoints").exists()


def described(metadata: dict[str, str]) -> dict[str, Any]:
    """A generator file's metadata table with its JSON values read (its format aside, which reading it checks):
    what the folder's config.json repeats."""
    found: dict[str, Any] = {}
    for key, value in metadata.items():
        if key == "format":
            continue
        try:
            found[key] = value if key in ("gan_registry", "prior") else json.loads(value)
        except (ValueError, RecursionError):
            found[key] = value  # then it differs from config.json's, which says so
    return found


def folder_config(folder: Path) -> dict[str, Any]:
    """The folder's config.json, read as untrusted JSON."""
    path = Path(folder) / CONFIG_NAME
    try:
        config = json.loads(read_text(path, limit=CONFIG_LIMIT))
    except FileNotFoundError:
        raise UserError(f"{folder} has no {CONFIG_NAME}: it is not a folder written by `gan export -o DIR/`") \
            from None
    except (OSError, ValueError, RecursionError) as error:
        raise UserError(f"{path} is not readable JSON ({' '.join(str(error).split())[:120]})") from None
    weights = config.get("weights") if isinstance(config, dict) else None
    if not isinstance(weights, dict) or config.get("format") != FOLDER_FORMAT or \
            not isinstance(weights.get("sha256"), str) or not isinstance(config.get("card"), dict):
        raise UserError(f"{path} is not the config of a `gan export -o DIR/` folder (format {FOLDER_FORMAT})")
    return config


def metadata(path: Path) -> dict[str, str]:
    """The metadata table of a generator file, without reading its tensors."""
    return _read(Path(path), tensors=False)[1]


def verify(folder: Path) -> dict[str, Any]:
    """Refuse, in one line, a folder whose weights, config.json and card disagree; its config where they agree."""
    config = verify_weights(folder)
    try:
        _card.check(Path(folder) / _card.CARD_NAME, config["card"], config["weights"]["sha256"])
    except (KeyError, TypeError, AttributeError, ValueError) as error:  # crafted facts that no card renders
        raise UserError(f"{Path(folder) / CONFIG_NAME}: its card facts are damaged ({error!r:.80})") from None
    return config


def verify_weights(folder: Path) -> dict[str, Any]:
    """The folder's config.json, where the weights are those it states (their sha256 and description)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder written by `gan export -o DIR/`")
    config = folder_config(folder)
    weights = folder / WEIGHTS_NAME
    stated = config["weights"]["sha256"]
    found = _card.sha256_file(weights)
    if found != stated:
        raise UserError(f"{weights}: its sha256 is {found[:16]}..., but config.json and the card state "
                        f"{stated[:16]}...; the weights were changed after `gan export`")
    differing = sorted(k for k, v in described(metadata(weights)).items() if config.get(k) != v)
    if differing:
        raise UserError(f"{folder / CONFIG_NAME}: its '{differing[0]}' is not what {WEIGHTS_NAME} holds; config.json "
                        "was edited after `gan export`")
    return config


def _component(registry: Registry, kind: str, record: dict[str, Any], path: Path):
    try:
        return registry.get(kind, record["name"])
    except UnknownComponentError:
        dist = record.get("distribution")
        install = f"; pip install {dist} (it was exported with {dist} {record.get('version')})" if dist else ""
        raise UserError(f"{path} needs the {kind} '{record['name']}', which no installed plugin provides{install}") \
            from None


def _read(path: Path, tensors: bool = True) -> tuple[dict[str, Any], dict[str, str]]:
    open_user_file(path, "exported generator").close()  # safe_open takes a name: a FIFO is refused before it
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            found = {key: f.get_tensor(key) for key in f.keys()} if tensors else {}
    except (SafetensorError, OSError, ValueError) as error:
        raise UserError(f"{path} is not a readable safetensors file ({' '.join(str(error).split())})") from None
    if metadata.get("format") != FORMAT:
        raise UserError(f"{path} is not a generator exported by `gan export` (format {FORMAT})")
    return found, metadata


def _is_record(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("name"), str) and isinstance(value.get("params"), dict)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_shape(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(map(_is_whole, value))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_range(value: Any) -> bool:
    return value is None or (isinstance(value, list) and len(value) == 2 and all(map(_is_number, value))
                             and value[0] < value[1])


_NEEDS_TYPES = {f.name: type(f.default) for f in dataclasses.fields(Needs)}


def _is_needs(value: Any) -> bool:
    """Needs of this version, each of its type; a newer version's other needs are ignored."""
    return isinstance(value, dict) and all(isinstance(value[k], _NEEDS_TYPES[k]) for k in value.keys() & _NEEDS_TYPES)


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(isinstance(name, str) for name in value)


RECORD = "a component record with a name and params"


def _field(metadata: dict[str, str], name: str, path: Path, fits: Callable[[Any], bool], expected: str) -> Any:
    """The metadata entry `name`, parsed as JSON and checked, or a one-line refusal naming the file and the field."""
    if name not in metadata:
        raise UserError(f"{path}: its metadata has no '{name}'; the file is damaged or was not written by `gan export`")
    try:
        value = json.loads(metadata[name])
    except RecursionError:
        raise UserError(f"{path} is nested too deeply to be a gan-registry file") from None
    except ValueError:
        raise UserError(f"{path}: its metadata '{name}' is not JSON ({shown(metadata[name])})") from None
    if not fits(value):
        raise UserError(f"{path}: its metadata '{name}' is {shown(metadata[name])}, not {expected}")
    return value


def load(registry: Registry, path: Path) -> ExportedGenerator:
    """Rebuild the generator of an exported file or folder (verified first), in eval mode, on the CPU."""
    path = Path(path)
    if is_folder(path):
        verify(path)
        path = path / WEIGHTS_NAME
    tensors, metadata = _read(path)
    record = _field(metadata, "generator", path, _is_record, RECORD)
    latent_dim = _field(metadata, "latent_dim", path, _is_whole, "a whole number from 1")
    sample_shape = tuple(_field(metadata, "sample_shape", path, _is_shape, "a list of whole numbers from 1"))
    value_range = _field(metadata, "value_range", path, _is_range, "null or [low, high] of finite numbers, low < high")
    needs = _field(metadata, "needs", path, _is_needs, "a table of the objective's needs")
    classes = frequencies = None
    if "classes" in metadata:
        classes = _field(metadata, "classes", path, _is_names, "a list of class names")
        frequencies = _field(metadata, "class_frequencies", path,
                             lambda v: isinstance(v, list) and len(v) == len(classes)
                             and all(_is_number(f) and f >= 0 for f in v) and sum(v) > 0,
                             "a frequency of at least 0 for each class, not all 0")
    prior = standard_normal
    if metadata.get("prior") == "objective":
        objective_record = _field(metadata, "objective", path, _is_record, RECORD)
        objective = _component(registry, "objective", objective_record, path)
        objective_params = params_mod.build(objective.params, objective_record["params"],
                                            f"{path}: objective '{objective.name}'", moves=True)
        with blame(objective, "building the objective"):
            prior = latent_sampler(objective.factory(objective_params))
    elif metadata.get("prior") != "standard-normal":
        raise UserError(f"{path}: its metadata 'prior' is {shown(metadata.get('prior'))}, not objective or "
                        "standard-normal")
    component = _component(registry, "generator", record, path)
    params = params_mod.build(component.params, record["params"], f"{path}: generator '{component.name}'")
    needs = Needs(**{k: v for k, v in needs.items() if k in _NEEDS_TYPES})
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

    return ExportedGenerator(generator, prior, latent_dim, sample_shape, spec.value_range, metadata,
                             tuple(classes) if classes else None,
                             torch.tensor(frequencies, dtype=torch.float32) if classes else None)
