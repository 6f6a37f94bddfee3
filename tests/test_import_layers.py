"""The core's layers (docs/architecture.md) hold: import-linter checks the contract in pyproject.toml, imports
inside functions included, and every module must sit in a layer; plugins import only the public modules."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
        "--no-cache", "--no-logo"]
PUBLIC = {"gan_registry", "gan_registry.layers", "gan_registry.testing"}


def lint(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*LINT, str(where / "pyproject.toml")], cwd=where, capture_output=True, text=True,
                          env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin"}, timeout=300)


def test_the_core_keeps_its_layers():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 1 kept, 0 broken." in result.stdout


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "gan_registry", tmp_path / "gan_registry", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_an_upward_import_inside_a_function_breaks_the_layers(tmp_path):
    copy = _copy(tmp_path)
    with open(copy / "gan_registry" / "errors.py", "a") as errors:
        errors.write("\n\ndef _late():\n    from . import cli  # the contracts layer reaching for a front end\n")
    result = lint(copy)
    assert result.returncode == 1 and "BROKEN" in result.stdout
    assert "gan_registry.errors -> gan_registry.cli" in result.stdout


def test_a_module_placed_in_no_layer_breaks_the_layers(tmp_path):
    copy = _copy(tmp_path)
    (copy / "gan_registry" / "newcomer.py").write_text('"""Not yet in a layer."""\n')
    result = lint(copy)
    assert result.returncode == 1 and "gan_registry.newcomer" in result.stdout


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, core module) for each import of gan_registry in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "gan_registry":
                found += [(node.lineno, f"gan_registry.{a.name}") for a in node.names
                          if (ROOT / "gan_registry" / f"{a.name}.py").exists()]
            elif node.module.startswith("gan_registry."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("gan_registry.")]
    return found


def test_plugins_code_and_tests_import_only_the_public_modules():
    private = [f"{path.relative_to(ROOT)}:{line}: {name}" for path in sorted((ROOT / "plugins").rglob("*.py"))
               for line, name in _imports(path) if name not in PUBLIC]
    assert not private, private


LAYER_NAMES = ("front ends", "api", "services and duties", "run storage", "engine", "plan", "primitives",
               "registry", "contracts")


def test_each_module_says_in_its_docstring_which_layer_it_sits_in():
    import re

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    assert len(contract["layers"]) == len(LAYER_NAMES)
    wrong = []
    for name, layer in zip(LAYER_NAMES, contract["layers"]):
        for module in (m.strip() for m in re.split(r"[|:]", layer)):
            doc = ast.get_docstring(ast.parse((ROOT / "gan_registry" / f"{module}.py").read_text())) or ""
            if f"Layer: {name} (docs/architecture.md)." not in doc:
                wrong.append(module)
    assert not wrong, wrong
