"""R1/R2 (Mescheder et al. 2018) with lazy regularisation, and the relativistic pairing loss of R3GAN, against
their closed forms, on real autograd and through real runs."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_registry import Batch, Schedule
from gan_registry.testing import build, train_briefly
from gan_registry_objectives import _common, rpgan
from gan_registry_objectives.gan import GANParams


class Linear(nn.Module):
    """D(x) = w . x: its input gradient is w for every sample, so E||grad||^2 = ||w||^2 exactly."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return x.flatten(1) @ self.w


class Models(nn.Module):
    def __init__(self, discriminator, generator) -> None:
        super().__init__()
        self.discriminator, self.generator = discriminator, generator


def _models(dim=3):
    torch.manual_seed(0)
    return Models(Linear(torch.randn(dim)), nn.Linear(2, dim))


def _batch(step=0, n=8, dim=3):
    return Batch(torch.randn(n, dim), n, 2, "cpu", step=step)


def test_r1_and_r2_are_half_gamma_times_the_squared_input_gradient():
    models = _models()
    w2 = models.discriminator.w.detach().square().sum()
    for r1, r2 in ((1.5, 0.0), (0.0, 2.0), (1.5, 2.0)):
        real_scores, fake_scores, penalty, logged = _common.penalised_scores(models, _batch(), GANParams(r1=r1, r2=r2))
        torch.testing.assert_close(penalty, (r1 + r2) / 2 * w2)
        # the mean scores are logged too (TensorBoard's D(real) / D(fake) curves)
        torch.testing.assert_close(logged.pop("discriminator/score_real"), real_scores.mean())
        torch.testing.assert_close(logged.pop("discriminator/score_fake"), fake_scores.mean())
        assert set(logged) == {f"discriminator/{n}" for n, g in (("r1", r1), ("r2", r2)) if g}
        for value in logged.values():
            torch.testing.assert_close(value, w2)


def test_the_penalty_trains_the_discriminator():
    # d/dw (gamma/2 ||w||^2) = gamma w: the penalty's backward reaches D's weights (create_graph kept)
    models = _models()
    _, _, penalty, _ = _common.penalised_scores(models, _batch(), GANParams(r1=4.0))
    (grad,) = torch.autograd.grad(penalty, models.discriminator.w)
    torch.testing.assert_close(grad, 4.0 * models.discriminator.w.detach())


def test_a_nonlinear_discriminator_gets_the_per_sample_gradient_norm():
    torch.manual_seed(1)
    d = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    models = Models(d, nn.Linear(2, 3))
    batch = _batch()
    _, _, penalty, _ = _common.penalised_scores(models, batch, GANParams(r1=2.0))
    by_hand = []
    for x in batch.real:
        x = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(d(x[None]).sum(), x)
        by_hand.append(g.square().sum())
    torch.testing.assert_close(penalty, torch.stack(by_hand).mean())


def test_lazy_regularisation_applies_every_k_steps_scaled_by_k():
    models = _models()
    w2 = models.discriminator.w.detach().square().sum()
    params = GANParams(r1=1.0, penalty_every=4)
    for step in range(9):
        _, _, penalty, logged = _common.penalised_scores(models, _batch(step), params)
        if step % 4 == 0:
            torch.testing.assert_close(penalty, 0.5 * 4 * w2)
            assert "discriminator/r1" in logged
        else:
            assert penalty == 0.0 and not any(key.endswith(("/r1", "/r2")) for key in logged)


def test_rpgan_losses_are_the_papers_softplus_of_score_differences():
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0.0, 1.0, 0.5])
    torch.testing.assert_close(rpgan.discriminator_loss(real, fake), F.softplus(-(real - fake)).mean())
    torch.testing.assert_close(rpgan.generator_loss(fake, real), F.softplus(-(fake - real)).mean())
    # a pair the discriminator cannot tell apart costs log 2 to both players
    same = torch.zeros(4)
    assert rpgan.discriminator_loss(same, same).item() == pytest.approx(math.log(2))


def test_rpgan_generator_step_pairs_its_samples_with_real_ones():
    built = build(arch="mlp", objective="rpgan", dataset="gaussians", params={"dataset": {"count": 64}})
    discriminator, generator = built.phases
    assert discriminator.name == "discriminator" and generator.name == "generator"
    assert generator.uses_real  # the relativistic loss needs D(x) in the generator's step too


@pytest.mark.parametrize("objective, params, batchnorm_ok", [
    ("rpgan", {}, False),
    ("rpgan", {"r1": 0.0, "r2": 0.0}, True),
    ("gan", {}, True),
    ("gan", {"r1": 1.0}, False),
    ("hinge", {"r2": 0.5}, False),
    ("lsgan", {"r1": 0.1}, False),
    ("gan", {"r1": Schedule(0.0, 1.0)}, False),  # a penalty that a schedule turns on later needs it from the start
    ("rpgan", {"r1": Schedule(0.1, 0.0), "r2": 0.0}, False),
])
def test_needs_follow_the_penalties(objective, params, batchnorm_ok):
    from gan_registry import load_plugins

    component = load_plugins().get("objective", objective)
    assert component.needs_for(component.params(**params)).discriminator_batchnorm is batchnorm_ok


def test_penalties_off_change_nothing(tmp_path):
    plain = train_briefly(tmp_path / "a", arch="mlp", objective="gan", dataset="gaussians", steps=3,
                          params={"dataset": {"count": 64}})
    zero = train_briefly(tmp_path / "b", arch="mlp", objective="gan", dataset="gaussians", steps=3,
                         params={"dataset": {"count": 64}, "objective": {"r1": 0.0, "r2": 0.0, "penalty_every": 3}})
    a, b = plain.networks(), zero.networks()
    for key, value in a["discriminator"].state_dict().items():
        assert torch.equal(value, b["discriminator"].state_dict()[key])


@pytest.mark.parametrize("objective", ["gan", "hinge", "lsgan", "rpgan"])
def test_every_score_objective_trains_with_r1_and_r2(tmp_path, objective):
    run = train_briefly(tmp_path / objective, arch="dcgan", objective=objective, dataset="digits", steps=2,
                        image_size=16, params={"arch": {"base": 8}, "objective": {"r1": 1.0, "r2": 0.5,
                                                                                    "penalty_every": 2}},
                        log_every=1)
    lines = (run.dir / "metrics.jsonl").read_text().splitlines()
    assert '"discriminator/r1"' in lines[0] and '"discriminator/r2"' in lines[0]  # step 0 is due
    assert '"discriminator/r1"' not in lines[1]  # step 1 is not (penalty_every=2)
