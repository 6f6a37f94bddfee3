"""`gan new-plugin`: the scaffolded packages install, pass their own tests and train through `gan run`.

One package of each kind is scaffolded, all three are pip-installed into a directory of their own (never
into this environment), their generated tests run with pytest, and one real `gan run` trains the three
scaffolded components together (architecture, objective and dataset) to a checkpoint. Also tests
`gan_registry.testing.toy_plugin`, which the generated tests use.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gan_registry.cli import cli
from gan_registry.scaffold import KINDS, render
from gan_registry.testing import HANG_S, isolated_registry, toy_plugin, train_briefly

NAMES = {"architecture": "scaffold-arch", "objective": "scaffold-loss", "dataset": "scaffold-data"}


def invoke(*args: str, cwd=None):
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(cli, list(args), catch_exceptions=False)
    with runner.isolated_filesystem(temp_dir=cwd):
        return runner.invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory):
    """The three scaffolded packages, installed into `site`."""
    root = tmp_path_factory.mktemp("scaffold")
    for kind, name in NAMES.items():
        result = invoke("new-plugin", name, "--kind", kind, "-o", str(root / name))
        assert result.exit_code == 0, result.output
        assert f"created {root / name}/ ({kind} '{name}')" in result.output
    site = root / "site"
    assert importlib.util.find_spec("setuptools"), (
        "pip install --no-build-isolation needs setuptools in this environment (add it to requirements-dev.txt)")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "--disable-pip-version-check", "--target", str(site), *(str(root / name) for name in NAMES.values())],
        capture_output=True, text=True, timeout=HANG_S,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return root, site


def test_scaffolded_packages_pass_their_own_tests(scaffolded):
    root, site = scaffolded
    tests = [root / name / "tests" / f"test_gan_registry_{name.replace('-', '_')}.py" for name in NAMES.values()]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, tests)],
        cwd=root, env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=HANG_S,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "9 passed" in result.stdout


def test_scaffolded_components_train_together_through_gan_run(scaffolded):
    root, site = scaffolded
    out = root / "run"
    result = subprocess.run(
        [sys.executable, "-m", "gan_registry", "run", "--arch", NAMES["architecture"], "--objective",
         NAMES["objective"], "--dataset", NAMES["dataset"], "--steps", "3", "--batch-size", "32", "--no-progress",
         "--out", str(out)],
        cwd=root, env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=HANG_S,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "checkpoints" / "last.pt").exists()
    assert "warning" not in result.stderr
    import json

    components = json.loads((out / "config.json").read_text())["components"]
    assert components["dataset"]["distribution"] == f"gan-registry-{NAMES['dataset']}"
    assert components["objective"]["version"] == "0.1.0"


@pytest.mark.parametrize("kind", KINDS)
def test_rendered_files(kind):
    files = render("my-thing", kind)
    assert set(files) == {"pyproject.toml", "README.md", "gan_registry_my_thing/__init__.py",
                          "tests/test_gan_registry_my_thing.py"}
    assert 'my-thing = "gan_registry_my_thing"' in files["pyproject.toml"]
    assert '[project.entry-points.gan_registry]' in files["pyproject.toml"]
    for path, text in files.items():
        assert "$" not in text, path  # every placeholder was filled
        if path.endswith(".py"):
            compile(text, path, "exec")


@pytest.mark.parametrize(
    "args, message",
    [
        (["Bad_Name"], "plugin name 'Bad_Name' is invalid"),
        (["toy"], "'toy' is the name of gan_registry.testing.toy_plugin"),
        (["mlp", "--kind", "architecture"], "architecture 'mlp' is already registered by plugin 'mlp'"),
    ],
)
def test_refuses_bad_names_with_one_line(args, message, tmp_path):
    result = CliRunner().invoke(cli, ["new-plugin", *args, "-o", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()


def test_refuses_to_overwrite_an_existing_directory(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["new-plugin", "fresh", "-o", str(tmp_path / "taken")])
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {tmp_path / 'taken'} already exists; pick another directory with -o DIR"
    assert sorted(p.name for p in (tmp_path / "taken").iterdir()) == ["keep.txt"]


def test_default_directory_and_the_output_the_tutorials_show(tmp_path):
    spec = importlib.util.spec_from_file_location("tutorial_helpers", Path(__file__).with_name("test_tutorials.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    command = "gan new-plugin blobs --kind dataset"
    shown = helpers.documented_outputs(helpers.TUTORIALS / "index.md")[command]
    result = invoke(*command.split()[1:], cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("created gan-registry-blobs/ (dataset 'blobs'):")
    helpers.assert_output_matches(shown, result.output, command)
    assert len(shown) == len(result.output.splitlines())


def test_gan_help_and_scaffolding_do_not_import_torch(tmp_path):
    # The command object itself: the `gan` group's own invoke is the core's business.
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from gan_registry.cli import cli\n"
        "from gan_registry.scaffold import new_plugin_command\n"
        "result = CliRunner().invoke(cli, ['--help'])\n"
        "assert result.exit_code == 0 and 'new-plugin' in result.output, result.output\n"
        "result = CliRunner().invoke(new_plugin_command, ['light', '--kind', 'architecture', '-o', sys.argv[1]])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'torch' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "light")], capture_output=True, text=True,
                            timeout=HANG_S)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "light" / "gan_registry_light" / "__init__.py").exists()


# -- gan_registry.testing.toy_plugin ---------------------------------------------------------------

def test_toy_plugin_registers_every_slot():
    registry = isolated_registry(toy_plugin)
    assert [p.status for p in registry.plugins] == ["ok"]
    assert registry.names("architecture") == ["toy", "toy-autoencoder"]
    assert registry.get("architecture", "toy-autoencoder").encoder == "toy"
    assert registry.names("objective") == ["toy"] and registry.names("dataset") == ["toy"]


@pytest.mark.parametrize("shape", [(2,), (3, 8, 8)])
def test_toy_plugin_trains_on_points_and_images(shape, tmp_path):
    from gan_registry.testing import build

    registry = isolated_registry(toy_plugin)
    run = train_briefly(tmp_path, registry=registry, arch="toy", objective="toy", dataset="toy",
                        params={"dataset": {"shape": shape}})
    assert run.step == 2 and run.checkpoint()["step"] == 2 and (tmp_path / "checkpoints" / "last.pt").exists()
    built = build(registry, arch="toy", objective="toy", dataset="toy", params={"dataset": {"shape": shape}})
    assert built.spec.value_range == (None if len(shape) == 1 else (-1.0, 1.0))
