"""Helpers for testing plugins: an isolated registry, a real `gan` subprocess, a short training run.

Layer: front ends (docs/architecture.md).
"""
from __future__ import annotations

import collections
import contextlib
import math
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn
from torch.optim import Adam
from torch.overrides import TorchFunctionMode

from ._components import (
    Architecture,
    DataContext,
    Dataset,
    DataSource,
    Discriminator,
    Encoder,
    Generator,
    NetworkSpec,
    Objective,
)
from ._components import Phase
from ._plan import Settings, make_plan
from ._registry import Registry
from .api import Run
from .cli import cli
from .checkpoint import preserved_rng  # noqa: F401  (public here for plugin tests)
# The evaluation service, for a plugin's tests that measure through it (an extractor's features, a dataset's
# reference): public here, so that plugins import only gan_registry, gan_registry.layers and gan_registry.testing.
from .evaluation import Evaluator, ImageSet, dataset_key, reference_of  # noqa: F401
from .hookspecs import hookimpl
from .plugins import load_registry
from .training import seed_everything


def isolated_registry(*plugins: ModuleType | tuple[str, object], entry_points: bool = False) -> Registry:
    """A registry of just these plugin modules (plus installed ones if `entry_points`)."""
    named = [p if isinstance(p, tuple) else (p.__name__, p) for p in plugins]
    return load_registry(named, entry_points=entry_points, env={})


def invoke_gan(*args: Any) -> Any:
    """Run the `gan` command line in this process (click's CliRunner): fast, for tables of cases; returns the
    click Result (`exit_code`, `output`). Keep one `run_gan` subprocess per exit path for the real thing."""
    return CliRunner().invoke(cli, [str(a) for a in args])


HANG_S = 1800
"""A subprocess's time limit in tests: only a hang reaches it. Tests bound work (steps), not seconds: a correct run
on a loaded 2-core machine can take many times its usual time (a whole suite once took 47 minutes)."""


@contextlib.contextmanager
def no_hang(seconds: int = HANG_S) -> Iterator[None]:
    """Fail the block with TimeoutError instead of waiting forever (a FIFO opened for reading blocks until a writer
    comes). Main thread only: it uses SIGALRM."""
    def hung(signum, frame):
        raise TimeoutError(f"still waiting after {seconds} s (a FIFO opened?)")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_gan(*args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None,
            timeout: float = HANG_S) -> subprocess.CompletedProcess:
    """Run the real `gan` command line in a subprocess; returns the completed process (text output)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gan_registry", *map(str, args)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


def train_briefly(run_dir: str | Path, *, registry: Registry | None = None, steps: int = 2,
                  batch_size: int = 8, **settings: Any) -> Run:
    """Train `steps` steps on CPU and return the `Run`: proof a combination builds, runs and checkpoints.

    `settings` are `gan run` settings, e.g. arch="mlp", objective="gan", dataset="gaussians",
    params={"dataset": {"count": 64}}. `run_dir` must be new or empty. The process's random states are
    left as they were.
    """
    settings.setdefault("device", "cpu")
    with preserved_rng():
        return Run.new(registry=registry or load_registry(), out=run_dir, steps=steps, batch_size=batch_size,
                       **settings).train()


HOST_SYNCS = frozenset({"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "cpu",
                        "nonzero", "masked_select", "unique", "__format__", "__repr__"})
"""Tensor calls that make the host wait for the device: a value read into Python, a copy to the host, or an
output whose shape depends on the values."""


@contextlib.contextmanager
def count_host_syncs() -> Iterator[Any]:
    """Count the host syncs made inside the block by code outside torch, as a Counter of
    'function at file:line' (empty: none). torch's own (an optimiser's CPU step counter, fp16's GradScaler
    checking for overflow) are PyTorch's design and are left out. On a CPU they cost nothing, but they are the
    same calls that stall a GPU, so a test here keeps a hot loop free of them."""
    torch_dir = Path(torch.__file__).parent
    skipped = (str(torch_dir / "overrides.py"), str(torch_dir / "_tensor.py"))  # dispatch frames, not callers
    counts: collections.Counter = collections.Counter()

    class Counting(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", "")
            if name in HOST_SYNCS:
                frame = sys._getframe(1)
                while frame is not None and frame.f_code.co_filename.startswith(skipped):
                    frame = frame.f_back
                where = frame.f_code.co_filename if frame is not None else "?"
                if not where.startswith(str(torch_dir)):
                    counts[f"{name} at {where}:{frame.f_lineno}"] += 1
            return func(*args, **(kwargs or {}))

    with Counting():
        yield counts


@dataclass
class Built:
    """A checked combination, built as a run builds it at step 0 (seeded with its seed), not trained."""

    networks: dict[str, Any]
    """generator, discriminator (and encoder) modules, in train mode, on the CPU."""
    objective: Any
    phases: list[Phase]
    params: dict[str, Any]
    """slot (generator, discriminator, encoder, objective, dataset) -> its params dataclass instance."""
    data: DataSource
    spec: NetworkSpec
    settings: dict[str, Any]
    """Every setting, with the dataset's suggestions and the defaults filled in."""


def build(registry: Registry | None = None, **settings: Any) -> Built:
    """Check a combination as `gan run` does and build its networks and objective, without training.

    Raises what `gan run` would refuse with (`IncompatibleError`, `UserError`). The process's random
    states are left as they were.
    """
    plan = make_plan(registry or load_registry(), Settings(**settings))
    with preserved_rng():
        seed_everything(plan.settings.seed)
        built = plan.build_networks("cpu")
        networks = torch.nn.ModuleDict({role: built[role] for role in plan.pieces})  # no generator average
        objective = plan.build_objective()
        phases = objective.phases(networks)
    return Built(dict(networks.items()), objective, phases, dict(plan.params), plan.data, plan.spec,
                 plan.settings.as_dict())


# -- toy_plugin: tiny reference components, to test one plugin on its own ----------------------
# A dataset plugin's test needs some architecture and objective, and so on: these fill the other
# slots of a run without depending on which plugins are installed.


@dataclass
class _ToyNetParams:
    hidden: int = field(default=32, metadata={"help": "width of the hidden layer"})


@dataclass
class _ToyObjectiveParams:
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate of both networks"})


@dataclass
class _ToyDataParams:
    count: int = field(default=256, metadata={"help": "number of samples"})
    shape: tuple[int, ...] = field(
        default=(2,), metadata={"help": "sample shape: (2,) for points, (C, H, W) for images"}
    )


def _toy_mlp(sizes: list[int]):
    layers: list = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _toy_generator(params: _ToyNetParams, spec: NetworkSpec):
    class ToyGenerator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = _toy_mlp([spec.latent_dim, params.hidden, math.prod(spec.sample_shape)])

        def forward(self, z):
            x = self.net(z)
            if spec.value_range is not None:
                lo, hi = spec.value_range
                x = lo + (x.tanh() + 1) * (hi - lo) / 2
            return x.view(z.shape[0], *spec.sample_shape)

    return ToyGenerator()


def _toy_discriminator(params: _ToyNetParams, spec: NetworkSpec):
    inputs = spec.latent_dim if spec.needs.discriminator_input == "latent" else math.prod(spec.sample_shape)
    return _toy_mlp([inputs, params.hidden, 1])  # no BatchNorm: fits every objective's needs


def _toy_encoder(params: _ToyNetParams, spec: NetworkSpec):
    return _toy_mlp([math.prod(spec.sample_shape), params.hidden, spec.latent_dim])


class _ToyObjective:
    """The non-saturating GAN loss on logits: one discriminator step, then one generator step."""

    def __init__(self, params: _ToyObjectiveParams) -> None:
        self.params = params

    @staticmethod
    def _discriminator_loss(models, batch):
        fake = batch.fake(models.generator).detach()
        real_logits = models.discriminator(batch.real).reshape(-1)
        fake_logits = models.discriminator(fake).reshape(-1)
        return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))

    @staticmethod
    def _generator_loss(models, batch):
        return F.softplus(-models.discriminator(batch.fake(models.generator)).reshape(-1)).mean()

    def phases(self, models):
        lr = self.params.lr
        return [
            Phase(name="discriminator", loss=self._discriminator_loss,
                  optimizer=Adam(models.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))),
            Phase(name="generator", loss=self._generator_loss, uses_real=False,
                  optimizer=Adam(models.generator.parameters(), lr=lr, betas=(0.5, 0.999))),
        ]


def _toy_data(params: _ToyDataParams, context: DataContext) -> DataSource:
    shape = tuple(params.shape)
    if len(shape) == 3 and context.image_size:
        shape = (shape[0], context.image_size, context.image_size)
    images = len(shape) == 3

    def load():
        g = torch.Generator().manual_seed(0)
        x = torch.randn(params.count, *shape, generator=g)
        return (0.5 * x).clamp(-1, 1) if images else 0.1 * x + 1.0

    return DataSource(sample_shape=shape, value_range=(-1.0, 1.0) if images else None, load=load)


def _register_toy_architectures(register) -> None:
    register(Generator(name="toy", summary="toy MLP generator (testing)", params=_ToyNetParams,
                       factory=_toy_generator))
    register(Discriminator(name="toy", summary="toy MLP discriminator without BatchNorm (testing)",
                           params=_ToyNetParams, factory=_toy_discriminator))
    register(Encoder(name="toy", summary="toy MLP encoder (testing)", params=_ToyNetParams, factory=_toy_encoder))
    register(Architecture(name="toy", summary="toy generator and discriminator (testing)",
                          generator="toy", discriminator="toy", latent_dim=8))
    register(Architecture(name="toy-autoencoder", summary="toy generator, discriminator and encoder (testing)",
                          generator="toy", discriminator="toy", encoder="toy", latent_dim=8))


def _register_toy_objectives(register) -> None:
    register(Objective(name="toy", summary="non-saturating GAN loss, Adam (testing)", params=_ToyObjectiveParams,
                       factory=_ToyObjective))


def _register_toy_datasets(register) -> None:
    register(Dataset(name="toy", summary="a Gaussian blob of 2D points, or noise images (testing)",
                     params=_ToyDataParams, factory=_toy_data))


toy_plugin = ModuleType("gan_registry.testing.toy_plugin", "Tiny reference components for plugin tests.")
"""Tiny reference components for plugin tests, as a plugin module.

Registers architectures `toy` (generator and discriminator) and `toy-autoencoder` (with an
encoder), objective `toy` (the non-saturating GAN loss) and dataset `toy` (a 2D Gaussian blob,
or noise images with `params={"dataset": {"shape": (1, 8, 8)}}`). The networks have one hidden
layer and no BatchNorm, so they fit any sample shape and any objective's needs. Pass it to
`isolated_registry` beside the plugin under test to fill the other slots of a run:

    registry = isolated_registry(my_plugin, toy_plugin)
    train_briefly(tmp_path, registry=registry, arch="toy", objective="toy", dataset="spiral")
"""
toy_plugin.register_architectures = hookimpl(_register_toy_architectures)
toy_plugin.register_objectives = hookimpl(_register_toy_objectives)
toy_plugin.register_datasets = hookimpl(_register_toy_datasets)
