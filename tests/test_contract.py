"""Components that break their contract are named in one line, before training where they can be caught."""
from __future__ import annotations

import types

import pytest

from gan_registry import Generator, Objective, Phase, Run, hookimpl
from gan_registry.errors import PluginFailure
from gan_registry.testing import isolated_registry, toy_plugin

TOY = dict(arch="toy", dataset="toy", batch_size=8, device="cpu")


class VectorLoss:
    def __init__(self, params):
        pass

    def phases(self, models):
        from torch.optim import Adam

        def loss(models, batch):
            return models.discriminator(batch.real).reshape(-1)  # one value per sample: not reduced

        return [Phase(name="critic", loss=loss, optimizer=Adam(models.discriminator.parameters()))]


def _wrong_generator(params, spec):
    from torch import nn

    return nn.Linear(spec.latent_dim, 3)  # (N, 3) for data of shape (2,)


broken = types.ModuleType("broken")
broken.register_objectives = hookimpl(lambda register: register(
    Objective(name="vector-loss", summary="returns an unreduced loss", factory=VectorLoss)))
broken.register_architectures = hookimpl(lambda register: register(
    Generator(name="wrong-shape", summary="makes samples of the wrong shape", factory=_wrong_generator)))


def test_a_loss_that_is_not_a_scalar_names_objective_and_phase_and_leaves_no_folder(tmp_path):
    registry = isolated_registry(toy_plugin, broken)
    run = Run.new(**TOY, objective="vector-loss", registry=registry, out=tmp_path / "run", steps=5)
    with pytest.raises(PluginFailure, match=r"objective 'vector-loss' from plugin 'broken' broke its contract: phase "
                                            r"'critic' returned a loss of shape \(8,\), not a scalar"):
        run.train()
    assert not (tmp_path / "run").exists(), "a run that failed before its first checkpoint leaves no folder"


def test_a_generator_of_the_wrong_shape_is_refused_before_anything_is_written(tmp_path):
    registry = isolated_registry(toy_plugin, broken)
    with pytest.raises(PluginFailure, match=r"generator 'wrong-shape' from plugin 'broken' broke its contract: it made "
                                            r"samples of shape \(2, 3\) from 2 noise vectors; \(2, 2\) expected"):
        Run.new(**TOY, objective="toy", generator="wrong-shape", registry=registry, out=tmp_path / "run", steps=5)
    assert not (tmp_path / "run").exists()


def test_checking_a_plan_leaves_the_callers_random_state_alone():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    Run.new(**TOY, objective="toy", registry=isolated_registry(toy_plugin), steps=1)
    assert torch.equal(torch.rand(3), expected)


def test_builtin_plugins_import_only_the_public_api():
    """Plugin code and plugin tests under plugins/ are written as a third party would write them."""
    import re
    from pathlib import Path

    internal = re.compile(r"(from|import) gan_registry\.(_\w+|training|runs|plugins|checkpoint|cli|data|generate|render)"
                          r"\b|from gan_registry import (.*, *)?(_\w+|training|runs|plugins|checkpoint|cli|data|generate"
                          r"|render)\b")
    root = Path(__file__).resolve().parents[1] / "plugins"
    found = [f"{path.relative_to(root)}:{n}: {line.strip()}" for path in sorted(root.rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if internal.search(line)]
    assert not found, "internal imports under plugins/:\n" + "\n".join(found)
