"""`gan new-plugin`: scaffold a plugin distribution that works before it is edited.

The package holds a pyproject with the entry point, an example component of the chosen kind, a test
using `gan_registry.testing` and a README. The templates are the strings below (`string.Template`,
`$name` placeholders). Importing this module does not import torch: `gan --help` stays fast.

Layer: front ends (docs/architecture.md).
"""
from __future__ import annotations

from pathlib import Path
from string import Template

import click

from . import __version__, _console
from ._components import HOOKS, KIND_BY_NAME, NAME_PATTERN
from .errors import UserError

KINDS = ("architecture", "objective", "dataset")
RESERVED = {"toy": "gan_registry.testing.toy_plugin's reference components, which the generated test uses"}

RUN = {
    "dataset": "gan run --arch mlp --objective gan --dataset $name --steps 200",
    "objective": "gan run --arch mlp --objective $name --dataset gaussians --steps 200",
    "architecture": "gan run --arch $name --objective gan --steps 200",
}


TEMPLATES = Path(__file__).with_name("templates")
"""The files a scaffold is made of, as `string.Template`s ($name, $module, $dist, $hook, ...): package data."""


def _template(name: str) -> Template:
    return Template((TEMPLATES / f"{name}.tmpl").read_text())

KIND_COMPONENTS = {kind: HOOKS[KIND_BY_NAME[kind].hook] for kind in KINDS}
"""What a scaffold of each kind registers: every kind its hook registers."""


def _check_name(name: str, kind: str) -> None:
    if not NAME_PATTERN.match(name):
        raise UserError(f"plugin name {name!r} is invalid: use lowercase letters, digits and '-', like a component "
                        "name (e.g. my-dataset)")
    if name in RESERVED:
        raise UserError(f"'{name}' is the name of {RESERVED[name]}; pick another name")
    # _console's registry shows a broken plugin's warning on one line, as every command does
    for component in _console.registry().find(name):
        if component.kind in KIND_COMPONENTS[kind]:
            raise UserError(f"{component.kind} '{name}' is already registered by {component.origin}; pick another name")


def render(name: str, kind: str) -> dict[str, str]:
    """The files of a plugin distribution for component NAME of KIND, by path relative to its directory."""
    module = "gan_registry_" + name.replace("-", "_")
    core = ".".join(__version__.split(".")[:2])
    values = {"name": name, "kind": kind, "module": module, "dist": f"gan-registry-{name}", "core": core,
              "hook": KIND_BY_NAME[kind].hook}
    values["run"] = Template(RUN[kind]).substitute(values)
    values["train"] = _template(f"train_{kind}.py").substitute(values).rstrip("\n")
    return {
        "pyproject.toml": _template("pyproject.toml").substitute(values),
        "README.md": _template("README.md").substitute(values),
        f"{module}/__init__.py": _template(f"{kind}.py").substitute(values),
        f"tests/test_{module}.py": _template("test_plugin.py").substitute(values),
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
