"""`gan new-plugin`: scaffold a plugin distribution that works before it is edited.

The package holds a pyproject with the entry point, an example component of the chosen kind, a test
using `gan_registry.testing` and a README. The templates are the strings below (`string.Template`,
`$name` placeholders). Importing this module does not import torch: `gan --help` stays fast.
"""
from __future__ import annotations

from pathlib import Path
from string import Template

import click

from . import __version__
from ._components import NAME_PATTERN
from .errors import UserError

KINDS = ("architecture", "objective", "dataset")
RESERVED = {"toy": "gan_registry.testing.toy_plugin's reference components, which the generated test uses"}

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "A gan-registry $kind plugin: $name"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["gan-registry>=$core", "torch>=2.1"]

[project.optional-dependencies]
test = ["pytest>=7"]

# How gan-registry finds the plugin: plugin name = module holding its hooks.
[project.entry-points.gan_registry]
$name = "$module"

[tool.setuptools.packages.find]
include = ["$module*"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

README = """\
# $dist

A gan-registry $kind plugin registering `$name`.
It was scaffolded by `gan new-plugin`: the example in `$module/__init__.py` works as it is; make it yours.

```console
python -m pip install -e ".[test]"   # editable: your edits take effect without reinstalling
python -m pytest                     # tests/ uses gan_registry.testing
gan describe $name
$run
```

- `$module/__init__.py`: the parameters (a dataclass: type, default and help for each), the factory and the
  `$hook` hook that registers the component.
- `pyproject.toml`: the entry point in the `gan_registry` group; bump `version` on every release.
- `tests/test_$module.py`: checks that the plugin registers, trains briefly with the toy components of
  `gan_registry.testing`, and is found through its installed entry point.

If `gan` warns that the plugin failed to load, `gan plugins` shows the error; `GAN_REGISTRY_STRICT_PLUGINS=1`
turns it into a failure and `GAN_REGISTRY_BLOCK_PLUGINS=$name` skips the plugin.
"""

TEST = '''\
"""Tests for the $name plugin, with the helpers of gan_registry.testing."""
import $module
from gan_registry.testing import isolated_registry, run_gan, toy_plugin, train_briefly


def test_registers():
    registry = isolated_registry($module)
    assert [plugin.status for plugin in registry.plugins] == ["ok"], registry.plugins[0].error
    assert registry.get("$kind", "$name").summary


def test_trains_briefly(tmp_path):
    # toy_plugin fills the other slots of the run with tiny reference components.
    registry = isolated_registry($module, toy_plugin)
$train


def test_installed_entry_point():
    """Needs the package installed: python -m pip install -e ."""
    result = run_gan("describe", "$name", "--kind", "$kind")
    assert result.returncode == 0, result.stderr
    assert "($dist " in result.stdout
'''

TRAIN = {
    "dataset": '''\
    train_briefly(tmp_path, registry=registry, arch="toy", objective="toy", dataset="$name")
    assert (tmp_path / "checkpoints" / "last.pt").exists()''',
    "objective": '''\
    train_briefly(tmp_path, registry=registry, arch="toy", objective="$name", dataset="toy")
    assert (tmp_path / "checkpoints" / "last.pt").exists()''',
    "architecture": '''\
    train_briefly(tmp_path / "points", registry=registry, arch="$name", objective="toy", dataset="toy")
    train_briefly(tmp_path / "images", registry=registry, arch="$name", objective="toy", dataset="toy",
                  params={"dataset": {"shape": (1, 8, 8)}})
    assert (tmp_path / "images" / "checkpoints" / "last.pt").exists()''',
}

RUN = {
    "dataset": "gan run --arch mlp --objective gan --dataset $name --steps 200",
    "objective": "gan run --arch mlp --objective $name --dataset gaussians --steps 200",
    "architecture": "gan run --arch $name --objective gan --steps 200",
}

HOOK = {"dataset": "register_datasets", "objective": "register_objectives", "architecture": "register_architectures"}

DATASET = '''\
"""$name: a gan-registry dataset plugin.

The example data are points near the unit circle; replace `points` with your data, keeping the
shape and range that `build` declares.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from gan_registry import Dataset, DataSource, hookimpl


@dataclass
class Params:
    count: int = field(default=10_000, metadata={"help": "number of training points"})
    noise: float = field(default=0.05, metadata={"help": "standard deviation of the noise around the circle"})
    seed: int = field(default=0, metadata={"help": "seed of the points (independent of the run's --seed)"})

    def __post_init__(self) -> None:
        if self.count < 1 or self.noise < 0:
            raise ValueError("count must be at least 1 and noise at least 0")


def points(params: Params, count: int, seed: int):
    """`count` points, shape (count, 2). torch is imported here, not at module level: plugins load fast."""
    import math

    import torch

    g = torch.Generator().manual_seed(seed)
    angle = 2 * math.pi * torch.rand(count, generator=g)
    circle = torch.stack([angle.cos(), angle.sin()], dim=1)
    return circle + params.noise * torch.randn(count, 2, generator=g)


def build(params: Params, context) -> DataSource:
    """Describe the data first (shape, range), load it later. context.data_dir and
    context.image_size carry --data-dir and --image-size."""
    return DataSource(
        sample_shape=(2,),  # images: (channels, height, width)
        value_range=None,  # unbounded; images: (-1.0, 1.0)
        load=lambda: points(params, params.count, params.seed),
        load_heldout=lambda: points(params, 1_000, params.seed + 1),
    )


@hookimpl
def register_datasets(register):
    register(Dataset(name="$name", summary="Points near the unit circle (example data)", params=Params,
                     factory=build))
'''

OBJECTIVE = '''\
"""$name: a gan-registry objective plugin.

The example is the original GAN's non-saturating loss on logits (Goodfellow et al. 2014);
change the losses and the schedule in `phases`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from gan_registry import Objective, Phase, hookimpl


@dataclass
class Params:
    discriminator_steps: int = field(default=1, metadata={"help": "discriminator steps per generator step"})
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate of both networks"})
    betas: tuple[float, float] = field(default=(0.5, 0.999), metadata={"help": "Adam betas"})

    def __post_init__(self) -> None:
        if self.discriminator_steps < 1 or not self.lr > 0:
            raise ValueError("discriminator_steps must be at least 1 and lr > 0")


class ExampleObjective:
    def __init__(self, params: Params) -> None:
        self.params = params

    def discriminator_loss(self, models, batch):
        import torch
        import torch.nn.functional as F

        with torch.no_grad():  # this phase does not train the generator
            fake = models.generator(batch.noise())
        real_logits = models.discriminator(batch.real).reshape(-1)
        fake_logits = models.discriminator(fake).reshape(-1)
        return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))

    def generator_loss(self, models, batch):
        import torch.nn.functional as F

        logits = models.discriminator(models.generator(batch.noise())).reshape(-1)
        return F.softplus(-logits).mean()  # -log sigmoid(D(G(z)))

    def phases(self, models):
        """The optimisation steps of one training step, in order; the engine runs them."""
        from torch.optim import Adam

        p = self.params
        return [
            Phase(name="discriminator", loss=self.discriminator_loss, repeats=p.discriminator_steps,
                  optimizer=Adam(models.discriminator.parameters(), lr=p.lr, betas=p.betas)),
            Phase(name="generator", loss=self.generator_loss, uses_real=False,
                  optimizer=Adam(models.generator.parameters(), lr=p.lr, betas=p.betas)),
        ]


@hookimpl
def register_objectives(register):
    # needs=Needs(discriminator_batchnorm=False) if the loss penalises the discriminator per sample.
    register(Objective(name="$name", summary="Non-saturating GAN loss on logits (example)", params=Params,
                       factory=ExampleObjective))
'''

ARCHITECTURE = '''\
"""$name: a gan-registry architecture plugin.

The example is a one-hidden-layer MLP generator and discriminator for any sample shape. The
factories read the run's NetworkSpec and refuse, with IncompatibleError, what they cannot build.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from gan_registry import Architecture, Discriminator, Generator, IncompatibleError, hookimpl


@dataclass
class GeneratorParams:
    hidden: int = field(default=256, metadata={"help": "width of the hidden layer"})


@dataclass
class DiscriminatorParams:
    hidden: int = field(default=256, metadata={"help": "width of the hidden layer"})
    norm: Literal["none", "batch", "layer"] = field(
        default="none", metadata={"help": "normalisation after the hidden layer"}
    )


def build_generator(params: GeneratorParams, spec):
    """noise (N, latent_dim) -> samples (N, *sample_shape) in the data's value range."""
    from torch import nn

    if spec.value_range not in (None, (-1.0, 1.0)):
        raise IncompatibleError(f"this generator outputs values in (-1, 1) or unbounded ones, not {spec.value_range}")
    layers = [nn.Linear(spec.latent_dim, params.hidden), nn.ReLU(),
              nn.Linear(params.hidden, math.prod(spec.sample_shape))]
    if spec.value_range is not None:
        layers.append(nn.Tanh())
    layers.append(nn.Unflatten(1, tuple(spec.sample_shape)))
    return nn.Sequential(*layers)


def build_discriminator(params: DiscriminatorParams, spec):
    """batch -> one raw score (logit) per sample; no sigmoid."""
    from torch import nn

    if params.norm == "batch" and not spec.needs.discriminator_batchnorm:
        raise IncompatibleError("norm=batch mixes the samples of a batch, and this objective needs a "
                                "per-sample discriminator; use norm=layer or none")
    latent = spec.needs.discriminator_input == "latent"  # an adversarial autoencoder judges codes
    inputs = spec.latent_dim if latent else math.prod(spec.sample_shape)
    norms = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm, "none": lambda width: nn.Identity()}
    norm = norms[params.norm](params.hidden)
    return nn.Sequential(nn.Flatten(), nn.Linear(inputs, params.hidden), norm, nn.LeakyReLU(0.2),
                         nn.Linear(params.hidden, 1))


@hookimpl
def register_architectures(register):
    register(Generator(name="$name", summary="One-hidden-layer MLP generator (example)", params=GeneratorParams,
                       factory=build_generator))
    register(Discriminator(name="$name", summary="One-hidden-layer MLP discriminator (example)",
                           params=DiscriminatorParams, factory=build_discriminator))
    register(Architecture(name="$name", summary="MLP generator and discriminator (example)",
                          generator="$name", discriminator="$name", latent_dim=64))
'''

MODULES = {"dataset": DATASET, "objective": OBJECTIVE, "architecture": ARCHITECTURE}
KIND_COMPONENTS = {"dataset": ("dataset",), "objective": ("objective",),
                   "architecture": ("architecture", "generator", "discriminator")}


def _check_name(name: str, kind: str) -> None:
    if not NAME_PATTERN.match(name):
        raise UserError(f"plugin name {name!r} is invalid: use lowercase letters, digits and '-', like a component "
                        "name (e.g. my-dataset)")
    if name in RESERVED:
        raise UserError(f"'{name}' is the name of {RESERVED[name]}; pick another name")
    from .cli import _registry  # shows a broken plugin's warning on one line, as every command does

    for component in _registry().find(name):
        if component.kind in KIND_COMPONENTS[kind]:
            raise UserError(f"{component.kind} '{name}' is already registered by {component.origin}; pick another name")


def render(name: str, kind: str) -> dict[str, str]:
    """The files of a plugin distribution for component NAME of KIND, by path relative to its directory."""
    module = "gan_registry_" + name.replace("-", "_")
    core = ".".join(__version__.split(".")[:2])
    values = {"name": name, "kind": kind, "module": module, "dist": f"gan-registry-{name}", "core": core,
              "hook": HOOK[kind]}
    values["run"] = Template(RUN[kind]).substitute(values)
    values["train"] = Template(TRAIN[kind]).substitute(values)
    return {
        "pyproject.toml": Template(PYPROJECT).substitute(values),
        "README.md": Template(README).substitute(values),
        f"{module}/__init__.py": Template(MODULES[kind]).substitute(values),
        f"tests/test_{module}.py": Template(TEST).substitute(values),
    }


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@click.command("new-plugin")
@click.argument("name")
@click.option("--kind", type=click.Choice(KINDS), default="dataset", show_default=True,
              help="What the example component is.")
@click.option("-o", "--output", "directory", type=click.Path(path_type=Path),
              help="Directory to create (default: ./gan-registry-NAME).")
def new_plugin_command(name: str, kind: str, directory: Path | None) -> None:
    """Scaffold a plugin package for component NAME, ready to edit.

    Creates a pyproject with the entry point, a working example component of KIND, a test using
    gan_registry.testing and a README; refuses to touch an existing directory.
    """
    _check_name(name, kind)
    directory = directory or Path(f"gan-registry-{name}")
    if directory.exists():
        raise UserError(f"{directory} already exists; pick another directory with -o DIR")
    files = render(name, kind)
    for relative, content in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    shown = _shown(directory)
    click.echo(f"created {shown}/ ({kind} '{name}'):")
    for relative in files:
        click.echo(f"  {shown}/{relative}")
    click.echo("next:")
    click.echo(f"  python -m pip install -e {shown}")
    click.echo(f"  python -m pytest {shown}")
    click.echo(f"  {Template(RUN[kind]).substitute(name=name)}")
