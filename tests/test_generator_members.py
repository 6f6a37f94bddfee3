"""A generator's optional members (GeneratorProtocol): `regularization`, its own loss terms (StyleGAN2's lazy
path-length penalty), and `truncated`, its own truncation trick (StyleGAN2's in w space)."""
import json

import pytest
import torch
from torch import nn

from gan_registry import Architecture, Generator, PluginFailure, hookimpl
from gan_registry.testing import isolated_registry, toy_plugin, train_briefly


class Regularised(nn.Module):
    """A linear generator with a lazy penalty on its weights every `interval` steps, and a truncation that
    shrinks its noise (a stand-in for w space) so a test can tell which path drew the samples."""

    def __init__(self, latent_dim: int, weight: float, interval: int, broken: bool = False) -> None:
        super().__init__()
        self.net = nn.Linear(latent_dim, 2)
        self.weight, self.interval, self.broken = weight, interval, broken
        self.register_buffer("calls", torch.zeros(()))
        self.seen: list[tuple[int, int, bool]] = []

    def forward(self, z, condition=None):
        return self.net(z)

    def regularization(self, z, condition, step):
        self.seen.append((step, len(z), condition is None))
        if step % self.interval:
            return None
        self.calls += 1  # a running statistic: checkpointed with the module
        if self.broken:
            return {"pull": self.net.weight}  # not a scalar
        return {"pull": self.weight * self.interval * self.net.weight.square().sum()}

    def truncated(self, z, psi, condition=None):
        return self.net(psi * 0 * z)  # every sample the "average" one


def _plugin(weight: float, interval: int = 2, broken: bool = False):
    class Plugin:
        @hookimpl
        def register_architectures(self, register):
            register(Generator(name="regularised", summary="linear generator with a penalty (testing)",
                               factory=lambda params, spec: Regularised(spec.latent_dim, weight, interval, broken)))
            register(Architecture(name="regularised", summary="testing", generator="regularised",
                                  discriminator="toy", latent_dim=8))
    return Plugin()


def _train(tmp_path, weight, name, steps=6, **plugin):
    registry = isolated_registry(toy_plugin, ("regularised", _plugin(weight, **plugin)))
    return train_briefly(tmp_path / name, registry=registry, arch="regularised", objective="toy", dataset="toy",
                         steps=steps, batch_size=8, log_every=1, lr_scale=50.0)


def test_the_generators_terms_join_its_loss_once_a_step_lazily_and_are_logged(tmp_path):
    pulled, free = _train(tmp_path, 1.0, "pulled"), _train(tmp_path, 0.0, "free")
    rows = [json.loads(line) for line in (pulled.dir / "metrics.jsonl").read_text().splitlines()]
    assert [("generator/pull" in row) for row in rows] == [True, False, True, False, True, False]  # steps 0, 2, 4
    state = torch.load(pulled.dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["models"]["generator.calls"] == 3  # its running statistic, checkpointed
    weights = {run: torch.load(run.dir / "checkpoints" / "last.pt", weights_only=True)["models"]
               ["generator.net.weight"].square().sum() for run in (pulled, free)}
    assert weights[pulled] < 0.9 * weights[free]  # the penalty trained the weights down


def test_a_regularization_that_returns_no_scalar_is_the_plugins_fault(tmp_path):
    with pytest.raises(PluginFailure, match="generator 'regularised' .* broke its contract: regularization\\(\\) "
                                            "must return scalar tensors, and 'pull' is Parameter\\(2, 8\\)"):
        _train(tmp_path, 1.0, "broken", broken=True)


def test_truncation_uses_the_generators_own_where_it_has_one(tmp_path):
    run = _train(tmp_path, 0.0, "run", steps=1)
    own = run.sample(n=5, truncation=0.5)
    assert torch.allclose(own, own[:1].expand_as(own))  # every sample the average one: the generator's truncation
    plain = run.sample(n=5)
    assert not torch.allclose(plain, plain[:1].expand_as(plain))
