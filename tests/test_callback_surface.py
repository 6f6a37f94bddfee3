"""The callback kind is a real extension point: a third party can write the core's own duties with the trainer
members `CallbackProtocol` documents. tests/third_party_average keeps the generator average again, importing public
names only; its average equals the built-in one bit for bit."""
import ast
import importlib.util
from pathlib import Path

import torch

from gan_registry import EMA_KEY, Run
from gan_registry.testing import isolated_registry

PUBLIC = {"gan_registry", "gan_registry.layers", "gan_registry.testing"}
PACKAGE = Path(__file__).parent / "third_party_average" / "__init__.py"
_spec = importlib.util.spec_from_file_location("third_party_average", PACKAGE)
third_party_average = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(third_party_average)


def test_the_third_party_package_imports_public_names_only():
    tree = ast.parse(PACKAGE.read_text())
    core = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("gan_registry")}
    assert core and core <= PUBLIC


def test_a_third_party_generator_average_equals_the_built_in_one(tmp_path):
    registry = isolated_registry(("third-party-average", third_party_average), entry_points=True)
    run = Run.new(arch="mlp", objective="gan", dataset="digits", steps=6, batch_size=16, ema=0.9, seed=3,
                  sample_every=2, out=tmp_path / "run", registry=registry, callbacks=["second-average"]).train()
    built_in = {k.removeprefix(f"{EMA_KEY}."): v for k, v in run.checkpoint()["models"].items()
                if k.startswith(f"{EMA_KEY}.")}
    second = torch.load(tmp_path / "run" / "second-average.pt", weights_only=True)
    assert built_in and set(second) == set(built_in)
    assert any("running_mean" in k for k in second)  # BatchNorm statistics of its own, from the same noise
    assert all(torch.equal(second[k], built_in[k]) for k in built_in)
    generator = {k.removeprefix("generator."): v for k, v in run.checkpoint()["models"].items()
                 if k.startswith("generator.")}
    assert not all(torch.equal(second[k], generator[k]) for k in second)  # an average, not a copy
