"""The plugin tutorials work as written: their code is extracted from the pages and run.

Every fenced block whose info string has `title="DIR/PATH"` is a file of the tutorial; a later block with
the same title replaces an earlier one, so a page may grow a file step by step and the last version is
the one tested. Each tutorial's package is installed with pip into a directory of its own (never into
this environment) and used through real `gan` subprocesses with PYTHONPATH pointing at it: its component
is discovered through its entry point, `gan describe` shows it and `gan run` trains with it. The output a
page shows for a command in a console block (`$ gan ...` followed by its output) is checked against the
real output, line by line; a line `...` stands for any lines, and a line ending in `...` for any rest.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from gan_registry.testing import HANG_S

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"
PRIVATE_IMPORT = re.compile(r"(from|import) gan_registry\.(_\w+|training|runs|plugins|checkpoint|cli|data|generate|render)\b")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
TITLE = re.compile(r'title="(?P<title>[^"]+)"')

# page -> what the test does with it. `hook`: the hook the tutorial's plugin implements (so the hook
# reference's meta-test sees every hook exercised); `checked`: commands whose output the page shows.
PAGES = {
    "dataset-plugin": {
        "hook": "register_datasets",
        "name": "spiral",
        "run": ["--arch", "mlp", "--objective", "gan", "--dataset", "spiral", "-p", "dataset.count=256"],
        "checked": ["gan describe spiral", "gan run --arch mlp --objective gan --dataset spiral -p dataset.arms=0"],
    },
    "objective-plugin": {
        "hook": "register_objectives",
        "name": "ragan",
        "run": ["--arch", "mlp", "--objective", "ragan", "--dataset", "gaussians", "-p", "dataset.count=256"],
        "checked": ["gan describe ragan"],
    },
    "architecture-plugin": {
        "hook": "register_architectures",
        "name": "resmlp",
        "run": ["--arch", "resmlp", "--objective", "gan", "--dataset", "gaussians", "-p", "dataset.count=256"],
        "checked": [
            "gan describe resmlp --kind architecture",
            "gan run --arch resmlp --objective wgan-gp --dataset gaussians -p discriminator.norm=batch",
        ],
    },
    "metric-plugin": {
        "hook": "register_metrics",
        "name": "moments",
        "run": ["--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "-p", "dataset.count=256"],
        "checked": ["gan describe moments"],
        "eval": "moments",
    },
    "publish": {"builds_on": ["dataset-plugin"], "pytest": "gan-spiral"},
}


def code_blocks(page: Path) -> list[tuple[str, str]]:
    """(info string, content) of each top-level fenced block, in order."""
    blocks, lines, i = [], page.read_text().splitlines(), 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info, body = match["fence"], match["info"].strip(), []
        i += 1
        while i < len(lines) and not re.fullmatch(re.escape(fence[0]) + "{%d,}" % len(fence), lines[i].strip()):
            body.append(lines[i])
            i += 1
        blocks.append((info, "\n".join(body) + "\n"))
        i += 1
    return blocks


def tutorial_files(page: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for info, content in code_blocks(page):
        title = TITLE.search(info)
        if title:
            files[title["title"]] = content
    return files


def documented_outputs(page: Path) -> dict[str, list[str]]:
    """command -> the output lines shown after `$ command` in the page's console blocks."""
    shown: dict[str, list[str]] = {}
    for info, content in code_blocks(page):
        if not info.startswith("console"):
            continue
        command = None
        for line in content.splitlines():
            if line.startswith("$ "):
                command = line[2:].strip()
                shown[command] = []
            elif command is not None:
                shown[command].append(line.rstrip())
    return shown


def assert_output_matches(shown: list[str], actual: str, command: str) -> None:
    lines = [line.rstrip() for line in actual.splitlines()]
    position = 0
    for expected in shown:
        if expected == "...":
            continue
        for index in range(position, len(lines)):
            if lines[index] == expected or (expected.endswith("...") and lines[index].startswith(expected[:-3])):
                position = index + 1
                break
        else:
            raise AssertionError(f"`{command}`: the page shows {expected!r}, the real output is:\n{actual}")


def gan(*args: str, site: Path, cwd: Path, timeout: float = HANG_S) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "gan_registry", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """page -> (directory the page's files were written to, site directory its packages are installed in)."""
    root = tmp_path_factory.mktemp("tutorials")
    cache: dict[str, tuple[Path, Path]] = {}

    def prepare(page: str) -> tuple[Path, Path]:
        if page in cache:
            return cache[page]
        work, site = root / page, root / f"{page}-site"
        for source in [*PAGES[page].get("builds_on", []), page]:
            for title, content in tutorial_files(TUTORIALS / f"{source}.md").items():
                path = work / title
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
        packages = sorted(p.parent for p in work.glob("*/pyproject.toml"))
        assert packages, f"{page}.md has no titled pyproject.toml block"
        assert importlib.util.find_spec("setuptools"), (
            "pip install --no-build-isolation needs setuptools in this environment (add it to requirements-dev.txt)")
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
             "--disable-pip-version-check", "--target", str(site), *map(str, packages)],
            capture_output=True, text=True, timeout=HANG_S,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        cache[page] = work, site
        return cache[page]

    return prepare


def test_every_tutorial_with_files_is_tested():
    with_files = {page.stem for page in TUTORIALS.glob("*.md") if tutorial_files(page)}
    assert with_files - {"python-api"} == set(PAGES)  # python-api's scripts are run by test_python_api.py


@pytest.mark.parametrize("page", [p for p in PAGES if "name" in PAGES[p]])
def test_tutorial_plugin_is_discovered_and_trains(page, workspace):
    spec = PAGES[page]
    work, site = workspace(page)
    source = "\n".join(tutorial_files(TUTORIALS / f"{page}.md").values())
    assert f"def {spec['hook']}(register)" in source

    for command in spec["checked"]:
        shown = documented_outputs(TUTORIALS / f"{page}.md").get(command)
        assert shown is not None, f"{page}.md shows no `$ {command}`"
        result = gan(*shlex.split(command)[1:], site=site, cwd=work)
        assert_output_matches(shown, result.stdout + result.stderr, command)
        if command.startswith(f"gan describe {spec['name']}"):  # the component is discovered and described
            assert result.returncode == 0 and f" {spec['name']}: " in result.stdout, result.stderr
    assert any(command.startswith(f"gan describe {spec['name']}") for command in spec["checked"])

    out = work / "run"
    result = gan("run", *spec["run"], "--steps", "3", "--batch-size", "32", "--no-progress", "--out", str(out),
                 site=site, cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "checkpoints" / "last.pt").exists()
    assert "warning" not in result.stderr

    # the same plugin from the Python API, and only public names in the tutorial's code
    assert not PRIVATE_IMPORT.search(source), PRIVATE_IMPORT.search(source)[0]
    flags = dict(zip(spec["run"][0::2], spec["run"][1::2]))
    params: dict[str, dict[str, str]] = {}
    for key, value in (v.split("=", 1) for k, v in zip(spec["run"][0::2], spec["run"][1::2]) if k == "-p"):
        group, name = key.split(".", 1)
        params.setdefault(group, {})[name] = value
    script = (f"import gan_registry as gr\nrun = gr.Run.new(arch={flags['--arch']!r}, objective={flags['--objective']!r},"
              f" dataset={flags['--dataset']!r}, params={params!r}, steps=3, batch_size=32, out='api-run').train()\n"
              "print('api step', run.step)\n")
    api = subprocess.run([sys.executable, "-c", script], cwd=work, capture_output=True, text=True, timeout=HANG_S,
                         env={**os.environ, "PYTHONPATH": str(site)})
    assert api.returncode == 0 and "api step 3" in api.stdout, api.stderr

    if "eval" in spec:
        evaluated = gan("eval", str(out), "--metric", spec["eval"], site=site, cwd=work)
        assert evaluated.returncode == 0, evaluated.stderr
        shown = documented_outputs(TUTORIALS / f"{page}.md")["gan eval runs/ring --metric moments"]
        assert_output_matches(shown, evaluated.stdout, "gan eval")


def test_publish_tutorial_tests_pass(workspace):
    work, site = workspace("publish")
    package = work / PAGES["publish"]["pytest"]
    assert (package / "README.md").exists() and (package / "tests").is_dir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
        cwd=work, env=env, capture_output=True, text=True, timeout=HANG_S,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
