"""The docs build strictly, cover every hook and public name, and every hook is exercised by a test.

Like datasette's test_docs.py: a hook added to `gan_registry.hookspecs` fails this file until the hook
reference documents it with its exact signature and some test under tests/ or plugins/*/tests uses it.
"""
from __future__ import annotations

import html as html_module
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gan_registry
from gan_registry import hookspecs, testing
from gan_registry.testing import HANG_S

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HOOK_PAGE = DOCS / "reference" / "hooks.md"
FENCED = re.compile(r"^(`{3,}|~{3,}).*?^\1[ \t]*$", re.M | re.S)  # a code block, up to its closing fence
IMAGE = re.compile(r"""!\[[^\]]*\]\(\s*<?([^)\s>]+)>?[^)]*\)|<img\b[^>]*?\bsrc\s*=\s*["']([^"']+)["']""", re.I)


def hookspec_functions() -> list:
    marker = f"{hookspecs.hookspec.project_name}_spec"
    return [f for _, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, marker)]


HOOKS = hookspec_functions()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True, timeout=HANG_S,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_there_are_hooks_to_check():
    assert {f.__name__ for f in HOOKS} >= {"register_architectures", "register_objectives", "register_datasets"}


@pytest.mark.parametrize("hook", HOOKS, ids=lambda f: f.__name__)
def test_hook_reference_documents_the_exact_signature_and_docstring(hook, site):
    """The page names every hook; the built page shows the hookspec's own signature and docstring."""
    assert f"{{{{ hook {hook.__name__} }}}}" in HOOK_PAGE.read_text()
    html = (site / "reference" / "hooks" / "index.html").read_text()
    text = re.sub(r"\s+", "", html_module.unescape(re.sub(r"<[^>]+>", " ", html)))
    assert f"{hook.__name__}{inspect.signature(hook)}".replace(" ", "") in text
    for line in inspect.getdoc(hook).splitlines():
        words = re.sub(r"\s+", "", line.lstrip("- ").replace("`", ""))
        assert words in text, line


@pytest.mark.parametrize("hook", HOOKS, ids=lambda f: f.__name__)
def test_every_hook_is_exercised_by_a_test(hook):
    sources = [*(ROOT / "tests").rglob("*.py"), *ROOT.glob("plugins/*/tests/**/*.py")]
    using = [path for path in sources if path.name != "test_docs.py" and hook.__name__ in path.read_text()]
    assert using, f"no test under tests/ or plugins/*/tests mentions {hook.__name__}"


def test_mkdocs_build_is_strict_clean(site):
    assert (site / "index.html").exists()


def test_cli_reference_is_generated_from_the_click_commands(site):
    from gan_registry.cli import cli

    html = (site / "reference" / "cli" / "index.html").read_text()
    for name, command in cli.commands.items():
        assert f"gan {name}" in html, name
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--"):
                    assert opt in html, f"gan {name} {opt}"


def test_api_reference_covers_the_public_names(site):
    html = (site / "reference" / "api" / "index.html").read_text()
    for name in gan_registry.__all__:
        if name != "__version__":
            assert f'id="gan_registry.{name}"' in html, name
    for name in ("isolated_registry", "run_gan", "train_briefly", "toy_plugin"):
        assert f'id="gan_registry.testing.{name}"' in html, name
    assert 'id="gan_registry.testing.Registry"' not in html  # imported names are not documented


def test_one_generated_page_per_builtin_distribution_with_every_parameter(site):
    from gan_registry import params
    from gan_registry.plugins import load_registry

    registry = load_registry()
    pyprojects = sorted(ROOT.glob("plugins/*/pyproject.toml"))
    assert pyprojects
    for pyproject in pyprojects:
        html = (site / "plugins" / pyproject.parent.name / "index.html").read_text()
        text = " ".join(html_module.unescape(re.sub(r"<[^>]+>", "", html)).split())
        for component in registry.components():
            if component.origin and component.origin.distribution and (
                f"name = \"{component.origin.distribution}\"" in pyproject.read_text()
            ):
                assert f"{component.kind} {component.name}" in text, (pyproject, component.name)
                for row in params.describe(component.params):
                    assert f"{row['name']} " in text and " ".join(row["help"].split()) in text, (component.name, row)


def test_mode_coverage_page_has_the_results_section():
    page = (DOCS / "mode-coverage.md").read_text()
    results = page.split("\n## Results\n", 1)
    assert len(results) == 2
    assert "$ python benchmarks/modes.py" in results[1]  # the command that made the table
    for objective in ("gan", "wgan", "wgan-gp", "hinge", "lsgan"):  # a measured row per objective and layout
        for layout in ("ring", "grid"):
            assert f"\n| {objective} | {layout} | " in results[1], (objective, layout)


def test_testing_helpers_are_documented_in_their_docstrings():
    for name in ("isolated_registry", "run_gan", "train_briefly"):
        assert inspect.getdoc(getattr(testing, name))
    assert testing.toy_plugin.__doc__


def test_readme_lists_every_builtin_distribution():
    import tomllib

    readme = (ROOT / "README.md").read_text()
    for pyproject in sorted(ROOT.glob("plugins/*/pyproject.toml")):
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
        assert f"| `{name}` |" in readme, f"README.md's plugin table lacks {name}"


def images_shown(page: Path) -> list[str]:
    """The image addresses of a page's Markdown `![alt](src)` and `<img src=...>`, outside code blocks."""
    return [markdown or html for markdown, html in IMAGE.findall(FENCED.sub("", page.read_text()))]


def test_images_shown_are_found_in_markdown_and_html_but_not_in_code():
    page = "![a](one.png){ width=\"9\" }\n<img alt=\"b\" src='two.png'>\n```markdown\n![c](three.png)\n```\n"
    assert IMAGE.findall(FENCED.sub("", page)) == [("one.png", ""), ("", "two.png")]


def test_every_image_a_page_shows_exists():
    missing = [f"{page.relative_to(DOCS)}: {src}" for page in sorted(DOCS.rglob("*.md")) for src in images_shown(page)
               if not re.match(r"[a-z][a-z0-9+.-]*:", src, re.I)  # not http:, data:, ...
               and not (page.parent / src.split("#")[0].split("?")[0]).is_file()]
    assert not missing, "images not found:\n" + "\n".join(missing)


TUTORIAL_PAGES = sorted((DOCS / "tutorials").glob("*.md"))


@pytest.mark.parametrize("page", TUTORIAL_PAGES, ids=lambda page: page.stem)
def test_every_tutorial_page_shows_a_picture(page):
    """Each tutorial shows what the reader's own run draws (docs/_quality/make_tutorial_pictures.py remakes them)."""
    assert images_shown(page), f"tutorials/{page.name} shows no picture"


@pytest.mark.parametrize("page", TUTORIAL_PAGES, ids=lambda page: page.stem)
def test_every_built_tutorial_page_has_an_img(page, site):
    built = site / "tutorials" / ("" if page.stem == "index" else page.stem) / "index.html"
    assert "<img" in built.read_text(), built
