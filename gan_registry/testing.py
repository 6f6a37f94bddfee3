"""Helpers for testing plugins: an isolated registry, a real `gan` subprocess, a short training run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ._plan import Settings, make_plan
from ._registry import Registry
from .plugins import load_registry


def isolated_registry(*plugins: ModuleType | tuple[str, object], entry_points: bool = False) -> Registry:
    """A registry of just these plugin modules (plus installed ones if `entry_points`)."""
    named = [p if isinstance(p, tuple) else (p.__name__, p) for p in plugins]
    return load_registry(named, entry_points=entry_points, env={})


def run_gan(*args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real `gan` command line in a subprocess; returns the completed process (text output)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gan_registry", *map(str, args)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


def train_briefly(run_dir: str | Path, *, registry: Registry | None = None, steps: int = 2,
                  batch_size: int = 8, **settings: Any):
    """Train `steps` steps on CPU and return the Trainer: proof a combination builds, runs and checkpoints.

    `settings` are `gan run` settings, e.g. arch="mlp", objective="gan", dataset="gaussians",
    params={"dataset": {"count": 64}}.
    """
    import torch

    from .training import Trainer, seed_everything

    registry = registry or load_registry()
    plan = make_plan(registry, Settings(steps=steps, batch_size=batch_size, device="cpu", **settings))
    seed_everything(plan.settings.seed)
    trainer = Trainer(plan, Path(run_dir), torch.device("cpu"), progress=False)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    trainer.train(max_steps=steps)
    return trainer
