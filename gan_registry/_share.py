"""`gan export RUN -o DIR/` and `gan card`: a folder that is exactly what a model hub publishes, with weights,
config.json, the model card (README.md) and its pictures. No file in it is code.

`huggingface_hub.upload_folder(folder_path=DIR, repo_id=...)` (or `hf upload REPO DIR`) publishes it as it is.

Layer: services and duties (docs/architecture.md).
"""
from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

from . import _card, checkpoint, export, generate, plots
from ._registry import Registry
from ._version import __version__
from .errors import UserError
from .runs import load_networks

SAMPLES_NAME, CURVES_NAME = "samples.png", "curves.png"
WRITTEN = (export.WEIGHTS_NAME, export.CONFIG_NAME, _card.CARD_NAME, SAMPLES_NAME, CURVES_NAME)
"""What an export folder holds: all that `--force` overwrites (nothing else in the folder is touched)."""


def is_folder_name(out: Path | str) -> bool:
    """`-o DIR/`, an existing folder, or a name without a suffix: an export folder rather than one file."""
    text = str(out)
    return text.endswith(("/", "\\")) or Path(out).is_dir() or not Path(text).suffix


def _write(path: Path, data: bytes) -> None:
    with checkpoint.replacing(path, str(path), kept="") as (f, _):  # a failed write, a full disk above all, exits 1
        f.write(data)


def _facts(registry: Registry, run_dir: Path, plan: Any, folder: str, license: str | None) -> dict[str, Any]:
    last = Path(run_dir) / "checkpoints" / "last.pt"
    state = checkpoint.load(last)
    prior = "objective" if getattr(plan.build_objective(), "sample_latent", None) else "standard-normal"
    return _card.gather(run_dir, plan, state, _card.sha256_file(last), folder, prior, license)


def _config(metadata: dict[str, str], facts: dict[str, Any], sha256: str, run_dir: Path) -> dict[str, Any]:
    """The folder's config.json: what the weights' metadata says, read; versions; the card's facts."""
    last = Path(run_dir) / "checkpoints" / "last.pt"
    return {
        "format": export.FOLDER_FORMAT,
        **export.described(metadata),
        "weights": {"file": export.WEIGHTS_NAME, "sha256": sha256},
        "components": facts["components"],
        "versions": {"gan-registry": __version__, "torch": facts["versions"]["torch"],
                     "python": platform.python_version(), "plugins": facts["distributions"],
                     "trained with": facts["versions"]["trained with"]},
        "source": {"run": Path(run_dir).name, "checkpoint": "last.pt", "sha256": _card.sha256_file(last)},
        "license": facts["license"],
        "card": facts,
    }


def export_folder(registry: Registry, run_dir: Path, out: Path, *, force: bool = False,
                  license: str | None = None) -> Path:
    """Write the run's generator (its last checkpoint), config.json, card and pictures into the folder `out`."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out}/ is a file; give a folder for the export")
    there = [name for name in WRITTEN if (out / name).exists()]
    if there and not force:
        raise UserError(f"-o {out}/ already holds {there[0]}; pass --force to overwrite the export's files")
    plan, networks = load_networks(registry, run_dir)
    data = export.generator_file(plan, networks)
    sha256 = hashlib.sha256(data).hexdigest()
    facts = _facts(registry, run_dir, plan, out.name, license)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / export.WEIGHTS_NAME, data)
    metadata = export.metadata(out / export.WEIGHTS_NAME)
    drawn = generate.samples_of(registry, out / export.WEIGHTS_NAME, None, 0)
    generate.write_samples(drawn.samples, out / SAMPLES_NAME, drawn.value_range, drawn.per_row)
    plots.plot([Path(run_dir)], out / CURVES_NAME)
    _write_card(out, _config(metadata, facts, sha256, run_dir))
    return out


def _write_card(out: Path, config: dict[str, Any]) -> None:
    """config.json, then the card rendered from its facts: the card last, so a folder half written is refused."""
    _write(out / export.CONFIG_NAME, (json.dumps(config, indent=2) + "\n").encode())
    _write(out / _card.CARD_NAME, _card.render(config["card"], config["weights"]["sha256"]).encode())


def card(registry: Registry, run_dir: Path, out: Path | None = None, license: str | None = None) -> str:
    """The card of the run's last checkpoint; with `out`, an export folder of that checkpoint gets it (and its
    config.json the facts), e.g. after `gan eval RUN`. The weights are not touched."""
    plan, _ = load_networks(registry, run_dir)
    if out is None:
        facts = _facts(registry, run_dir, plan, Path(run_dir).name, license)
        return _card.render(facts, "(not exported yet: `gan export RUN -o DIR/`)")
    config = export.verify_weights(Path(out))
    source = Path(run_dir) / "checkpoints" / "last.pt"
    recorded = config.get("source") if isinstance(config.get("source"), dict) else {}
    if recorded.get("sha256") != _card.sha256_file(source):
        raise UserError(f"{out} holds the weights of another checkpoint than {source}; export it again "
                        f"(`gan export {run_dir} -o {out}/ --force`)")
    stated = license if license is not None else config.get("license")
    folder = config["card"].get("folder")
    facts = _facts(registry, run_dir, plan, folder if isinstance(folder, str) else Path(out).name, stated)
    config.update(card=facts, license=stated)
    _write_card(Path(out), config)
    return _card.render(facts, config["weights"]["sha256"])
