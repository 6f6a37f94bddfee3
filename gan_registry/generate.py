"""What a finished (or paused) run produces: samples, reconstructions, metric values."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from . import render
from ._registry import Registry
from .errors import IncompatibleError, UserError
from .plugins import blame
from .runs import load_networks
from ._components import latent_sampler

CHUNK = 1024


def draw(generator, prior, latent_dim: int, n: int, seed: int) -> torch.Tensor:
    """`n` samples from noise drawn with `seed`: the same for a run and for its exported generator."""
    g = torch.Generator().manual_seed(seed)
    chunks = []
    with torch.no_grad():
        for start in range(0, n, CHUNK):
            z = prior(min(CHUNK, n - start), latent_dim, "cpu", g)
            chunks.append(generator(z).float())
    return torch.cat(chunks)


def _generate(plan, networks, n: int, seed: int) -> torch.Tensor:
    prior = latent_sampler(plan.build_objective())
    return draw(networks["generator"], prior, plan.latent_dim, n, seed)


def samples_of(registry: Registry, source: Path, n: int, seed: int) -> tuple[torch.Tensor, Any]:
    """`n` samples (and the data's value range) from a run directory or a file written by `gan export`."""
    from . import export

    if n < 1:
        raise UserError("-n must be at least 1")
    if export.is_export(source):
        exported = export.load(registry, source)
        return draw(exported.generator, exported.prior, exported.latent_dim, n, seed), exported.value_range
    plan, networks = load_networks(registry, source)
    return _generate(plan, networks, n, seed), plan.spec.value_range


def sample(registry: Registry, source: Path, n: int, seed: int, out: Path) -> Path:
    """Samples from a run directory, or from a generator file written by `gan export`, written to `out`."""
    suffix = Path(out).suffix.lower()
    if suffix not in (".png", ".pt", ".npy"):
        raise UserError(f"-o {out}: use a .png, .pt or .npy file name")
    samples, value_range = samples_of(registry, source, n, seed)
    out = Path(out)
    if out.is_dir():
        raise UserError(f"-o {out} is a folder; give a file name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"-o {out}: cannot make its folder ({error.strerror or error})") from None
    if suffix == ".png":
        render.save(samples, out, value_range)
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
    plan, networks = load_networks(registry, run_dir)
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
             params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the named metrics (or every one that applies) on `n` samples; also saved to RUN_DIR/eval.json.

    `params` ({name: value}) go to each chosen metric that declares them (`gan eval -p metric.NAME=VALUE`).
    """
    from . import params as params_mod
    from ._plan import in_group, spread_params

    plan, networks = load_networks(registry, run_dir)
    chosen = [registry.get("metric", m) for m in metrics] if metrics else registry.components("metric")
    spread = spread_params(params or {}, {m.name: m for m in chosen}, in_group("metric"))
    samples = _generate(plan, networks, n, seed)
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for metric in chosen:
        try:
            with blame(metric, "evaluating the samples"):
                values = params_mod.build(metric.params, spread[metric.name], f"metric '{metric.name}'")
                results[metric.name] = metric.factory(values)(samples, plan.data)
        except IncompatibleError as error:
            if metrics:
                raise UserError(f"metric '{metric.name}' does not apply to {run_dir}: {error}") from None
            skipped[metric.name] = str(error)
    if not results:
        reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no metric plugins installed"
        raise UserError(f"no metric applies to {run_dir} ({reasons})")
    report = {"samples": n, "seed": seed, "metrics": results, "skipped": skipped}
    (Path(run_dir) / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
