"""The core's layers (docs/architecture.md) hold: import-linter checks the contract in pyproject.toml, imports
inside functions included, and every module must sit in a layer; plugins import only the public modules. An import
stays inside a function only where it buys start-up time: of a heavy library, or of a core module that loads one."""
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


# -- imports inside functions ------------------------------------------------------------------------------------
HEAVY = (
    # third-party libraries (import alone, on a 2-core CPU)
    "torch",  # ~3 s
    "torchvision",  # ~3 s more than torch
    "numpy",  # ~0.15 s
    "matplotlib",  # ~0.9 s with pyplot
    "scipy",
    "PIL",  # ~20 ms
    "safetensors",
    "huggingface_hub",  # ~0.4 s: model cards (`gan export -o DIR/`, loading a folder)
    "tqdm",
    "optuna",  # ~1 s with sqlalchemy: studies only
    "webdataset",  # ~4 s (it imports torch): `gan data pack --format shards` only
    # standard-library modules that `gan --help` would pay for
    "importlib.metadata",  # ~25 ms (email, zipfile, csv, ...): loading plugins
    "concurrent.futures",  # ~9 ms (logging, queue, ...): the matrix's workers
    "tomllib",  # ~3 ms: its parser compiles regular expressions as it loads
    "tomli",  # tomllib on Python 3.10
    "traceback",  # ~2 ms
)
"""What an import inside a function may load: these, or a core module that imports one of them at module level."""


def _in_heavy(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in HEAVY)


def _loaded(node: ast.Import | ast.ImportFrom, package: Path) -> list[str]:
    """The modules an import statement loads, the core's own as gan_registry.NAME (the core is one flat package)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    module = "gan_registry" + (f".{node.module}" if node.module else "") if node.level else node.module
    if module == "gan_registry":
        return [f"gan_registry.{a.name}" if (package / f"{a.name}.py").exists() else module for a in node.names]
    return [module]


def _statements(tree: ast.Module) -> tuple[list, list]:
    """The import statements of a module: (at module level, inside a function)."""
    top: list = []
    inside: list = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (inside if in_function else top).append(child)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return top, inside


def lazy_imports_that_buy_nothing(package: Path) -> list[str]:
    """'file:line: why' for each import inside a function of `package` of a module that costs no start-up time:
    one not in HEAVY, nor a core module that imports one of HEAVY at module level (itself or through another)."""
    modules = {}  # core module -> (its file, (module-level, inside-a-function) import statements)
    for path in sorted(package.glob("*.py")):
        name = "gan_registry" if path.stem == "__init__" else f"gan_registry.{path.stem}"
        modules[name] = path, _statements(ast.parse(path.read_text()))
    loads = {}  # core module -> the modules importing it loads at once (a submodule loads its package first)
    for name, (_, (top, _)) in modules.items():
        loads[name] = {module for node in top for module in _loaded(node, package)} | ({"gan_registry"} - {name})
    heavy = {name for name, loaded in loads.items() if any(_in_heavy(module) for module in loaded)}
    while grown := {name for name, loaded in loads.items() if loaded & heavy} - heavy:
        heavy |= grown
    found = []
    for path, (_, inside) in modules.values():
        for node in inside:
            found += [f"{path.relative_to(package.parent)}:{node.lineno}: {module} is imported inside a function, where"
                      " it buys no start-up time (not in HEAVY, nor a core module that imports one at module level):"
                      " import it at the top of the module"
                      for module in _loaded(node, package) if not _in_heavy(module) and module not in heavy]
    return found


def test_imports_inside_functions_are_of_heavy_modules_only():
    found = lazy_imports_that_buy_nothing(ROOT / "gan_registry")
    assert not found, "\n".join(found)


def test_a_light_import_planted_inside_a_function_is_caught(tmp_path):
    package = _copy(tmp_path) / "gan_registry"
    cli = package / "cli.py"
    first = len(cli.read_text().splitlines()) + 4
    with open(cli, "a") as f:
        f.write("\n\ndef _planted():\n"
                "    import warnings  # the standard library: light\n"
                "    from . import params  # a core module that loads nothing heavy\n"
                "    import torch.nn  # heavy\n"
                "    from . import runs  # heavy: runs imports checkpoint, which imports torch\n"
                "    from ._files import read_text  # light, until it imports a heavy library below\n")
    found = lazy_imports_that_buy_nothing(package)
    assert [line.split(" is imported")[0] for line in found] == [
        f"gan_registry/cli.py:{first}: warnings", f"gan_registry/cli.py:{first + 1}: gan_registry.params",
        f"gan_registry/cli.py:{first + 4}: gan_registry._files"]
    assert found[0].endswith("import it at the top of the module")
    files = package / "_files.py"
    files.write_text(files.read_text().replace("import os\n", "import os\n\nimport numpy\n", 1))
    assert [line.split(" is imported")[0] for line in lazy_imports_that_buy_nothing(package)] == [
        f"gan_registry/cli.py:{first}: warnings", f"gan_registry/cli.py:{first + 1}: gan_registry.params"]
