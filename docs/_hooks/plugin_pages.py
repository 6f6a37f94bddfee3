"""mkdocs hook: one page per built-in plugin distribution, generated at build time.

Distributions are the directories `plugins/*/` with a `pyproject.toml`. Their components,
parameters and summaries come from the installed registry (`gan_registry.plugins.load_registry()`),
and the prose (the paper or seed each follows) from the plugin modules' docstrings, so the
pages cannot drift from the code and a new plugin directory gets a page without editing the
docs. A built-in distribution that is not installed is loaded from its source directory; one
that fails to load is a build warning, which `mkdocs build --strict` turns into an error.
"""
from __future__ import annotations

import importlib
import inspect
import logging
import re
import sys
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.plugin_pages")

SECTION = "Built-in plugins"
def _kinds():
    from gan_registry import KINDS

    return KINDS


KIND_ORDER = tuple(k.name for k in _kinds())
PARAM_GROUP = {k.name: f"{k.flag} (or arch)" if k.hook == "register_architectures" and k.name != "architecture"
               else k.flag for k in _kinds() if k.name != "architecture"}


@dataclass
class Distribution:
    slug: str  # the directory name under plugins/
    name: str
    version: str
    description: str
    entry_points: dict[str, str]
    directory: Path
    plugins: list = field(default_factory=list)  # PluginInfo, in entry-point order


_found: list[Distribution] = []


def _normal(name: str | None) -> str:
    return re.sub(r"[-_.]+", "-", name or "").lower()


def _distributions(root: Path) -> list[Distribution]:
    found = []
    for pyproject in sorted(root.glob("plugins/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        found.append(Distribution(
            slug=pyproject.parent.name,
            name=project["name"],
            version=str(project.get("version", "")),
            description=project.get("description", ""),
            entry_points=dict(project.get("entry-points", {}).get("gan_registry", {})),
            directory=pyproject.parent,
        ))
    return found


def on_config(config):
    """Put a page per distribution into the nav's "Built-in plugins" section."""
    global _found
    _found = _distributions(Path(config.config_file_path).parent)
    for item in config.nav or []:
        if isinstance(item, dict) and SECTION in item:
            item[SECTION] = ["plugins/index.md", *({d.slug: f"plugins/{d.slug}.md"} for d in _found)]
            break
    else:
        log.warning(f"mkdocs.yml: the nav has no '{SECTION}' section for the generated plugin pages")
    return config


def _load(distributions: list[Distribution]) -> None:
    from gan_registry.plugins import load_registry

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = load_registry(env={})
        by_dist: dict[str, list] = {}
        for info in registry.plugins:
            by_dist.setdefault(_normal(info.distribution), []).append(info)
        for dist in distributions:
            dist.plugins = by_dist.get(_normal(dist.name), [])
            if dist.plugins:
                continue
            # Not installed here: load its entry points from the source directory instead.
            log.info(f"{dist.name} is not installed; documenting it from {dist.directory}")
            sys.path.insert(0, str(dist.directory))
            try:
                modules = []
                for name, target in dist.entry_points.items():
                    try:
                        modules.append((name, importlib.import_module(target.partition(":")[0])))
                    except Exception as error:
                        log.warning(f"{dist.name}: entry point {name} = {target} does not import: {error}")
                dist.plugins = load_registry(modules, entry_points=False, env={}).plugins
            finally:
                sys.path.remove(str(dist.directory))
    for warning in caught:
        log.warning(f"while loading plugins: {warning.message}")
    for dist in distributions:
        for info in dist.plugins:
            if info.status != "ok":
                log.warning(f"{dist.name}: plugin '{info.name}' is {info.status}: {info.error}")


def _cell(value) -> str:
    """Plain text for a table cell: no Markdown emphasis, no HTML, no column breaks."""
    parts = str(value).replace("\n", " ").split("`")
    for i in range(0, len(parts), 2):  # outside `code spans`
        parts[i] = parts[i].replace("\\", "\\\\")
        for char in "*_[]":
            parts[i] = parts[i].replace(char, "\\" + char)
    return "`".join(parts).replace("<", "&lt;").replace("|", "&#124;")


def _code(value) -> str:
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace("|", "&#124;")
    return f"<code>{text}</code>"


def _module_doc(target: str) -> str:
    try:
        module = importlib.import_module(target.partition(":")[0])
    except Exception:  # reported by _load already
        return ""
    return inspect.getdoc(module) or ""


def _prose(docstring: str) -> str:
    """A docstring as Markdown: headings kept below the page's own, a blank line before a list."""
    lines: list[str] = []
    for line in docstring.splitlines():
        if re.match(r"[-*] ", line) and lines and lines[-1].strip() and not re.match(r"\s*[-*] |\s", lines[-1]):
            lines.append("")
        lines.append(re.sub(r"^#{1,3} ", "#### ", line))
    return "\n".join(lines)


def _component_section(component) -> list[str]:
    from gan_registry import params as params_mod

    lines = [f"### {component.kind} `{component.name}`", "", component.summary, ""]
    if component.kind == "architecture":
        pieces = ", ".join(f"{role} `{name}`" for role, name in component.pieces().items())
        lines += [f"Pieces: {pieces}; default latent dimension {component.latent_dim}.", ""]
    needs = component.needs_for(component.default_params()) if hasattr(component, "needs_for") else None
    if needs is not None:
        described = needs.describe()
        if described:
            lines += ["Needs:", "", *(f"- {need}" for need in described), ""]
    suggests = getattr(component, "suggests", None)
    if suggests:
        taken = ", ".join(f"`{key}={value}`" for key, value in suggests.items())
        lines += [f"Suggests, for runs that do not set them ([why](../concepts.md#settings-a-dataset-an-architecture-or-an-objective-suggests)): "
                  f"{taken}.", ""]
    rows = params_mod.describe(component.params)
    if rows:
        group = PARAM_GROUP.get(component.kind)
        if group:
            slot = group.split()[0]
            also = " (`arch.NAME` sets it on every piece of the architecture that has it)" if "arch" in group else ""
            lines += [f"Set with `-p {slot}.NAME=VALUE`{also} or a `[params.{slot}]` table in `--config`.", ""]
        elif component.kind == "metric":
            lines += ["`gan eval` runs the metric with these defaults.", ""]
        lines += ["| parameter | type | default | help |", "| --- | --- | --- | --- |"]
        for row in rows:
            cells = [f"`{row['name']}`", _code(row["type"]), _code(repr(row["default"])), _cell(row["help"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    elif component.kind != "architecture":
        lines += ["No parameters.", ""]
    return lines


def _page(dist: Distribution) -> str:
    lines = [f"# {dist.name}", "", f"{dist.description}. Version {dist.version}.", ""]
    packages = sorted({target.partition(":")[0].split(".")[0] for target in dist.entry_points.values()})
    for package in packages:
        if package not in {t.partition(":")[0] for t in dist.entry_points.values()}:
            doc = _module_doc(package)
            if doc:
                lines += [_prose(doc), ""]
    lines += [
        "Installed from this repository by the [install command](../getting-started.md#install), or on its own with",
        "",
        "```console",
        f"python -m pip install -e plugins/{dist.slug}",
        "```",
        "",
        "| plugin (entry point) | module | registers |",
        "| --- | --- | --- |",
    ]
    for info in dist.plugins:
        target = dist.entry_points.get(info.name, "")
        registers = ", ".join(f"{c.kind} `{c.name}`" for c in info.components) or info.status
        lines.append(f"| `{info.name}` | `{target}` | {registers} |")
    lines.append("")
    for info in dist.plugins:
        lines += [f"## Plugin `{info.name}`", ""]
        doc = _module_doc(dist.entry_points.get(info.name, ""))
        if doc:
            lines += [_prose(doc), ""]
        if info.status != "ok":
            lines += [f"!!! failure \"{info.status}\"", f"    {info.error}", ""]
        order = {kind: i for i, kind in enumerate(KIND_ORDER)}
        for component in sorted(info.components, key=lambda c: order.get(c.kind, 99)):
            lines += _component_section(component)
    return "\n".join(lines) + "\n"


def _index(distributions: list[Distribution]) -> str:
    lines = [
        "# Built-in plugins",
        "",
        "Each directory under `plugins/` is its own installable distribution, written exactly as a third party",
        "would write one. These pages are generated when the docs are built, from the installed registry",
        "(what `gan describe` shows) and the plugin modules' docstrings.",
        "",
        "| distribution | version | what it is |",
        "| --- | --- | --- |",
    ]
    for dist in distributions:
        lines.append(f"| [{dist.name}]({dist.slug}.md) | {dist.version} | {_cell(dist.description)} |")
    lines += ["", "## Every component", "", "| kind | name | summary | distribution |", "| --- | --- | --- | --- |"]
    order = {kind: i for i, kind in enumerate(KIND_ORDER)}
    rows = [(c, dist) for dist in distributions for info in dist.plugins for c in info.components]
    for c, dist in sorted(rows, key=lambda r: (order.get(r[0].kind, 99), r[0].name)):
        lines.append(f"| {c.kind} | `{c.name}` | {_cell(c.summary)} | [{dist.name}]({dist.slug}.md) |")
    return "\n".join(lines) + "\n"


def on_files(files, config):
    _load(_found)
    for dist in _found:
        files.append(File.generated(config, f"plugins/{dist.slug}.md", content=_page(dist)))
    files.append(File.generated(config, "plugins/index.md", content=_index(_found)))
    return files
