"""Each objective's losses against the paper formulas, on hand-made logits, through the objective's own steps."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_registry import Batch as StepBatch
from gan_registry_objectives import gan, hinge, lsgan, wgan, wgan_gp

REAL = torch.tensor([0.5, 2.0, -1.0, 0.0])
FAKE = torch.tensor([-2.0, 0.0, 0.5, 3.0])


class Fixed(nn.Module):
    """A 'generator' whose samples are the given values, whatever the noise: D's scores are then hand-made."""

    def __init__(self, values: torch.Tensor) -> None:
        super().__init__()
        self.values = nn.Parameter(values.clone()[:, None])

    def forward(self, z):
        return self.values * 1.0  # an operation, as a real generator has: no_grad then applies


class Scale(nn.Module):
    """D(x) = k x: an identity critic (k = 1) scores samples with their own value."""

    def __init__(self, k: float = 1.0) -> None:
        super().__init__()
        self.k = nn.Parameter(torch.tensor(k))  # a parameter, so the phases can build optimisers

    def forward(self, x):
        return self.k * x


def run(objective, k: float = 1.0):
    models = nn.ModuleDict({"generator": Fixed(FAKE), "discriminator": Scale(k)})
    d_phase, g_phase = objective.phases(models)
    real_batch = StepBatch(REAL[:, None], len(REAL), 1, torch.device("cpu"))
    noise_batch = StepBatch(None, len(FAKE), 1, torch.device("cpu"))
    d_out, g_out = d_phase.loss(models, real_batch), g_phase.loss(models, noise_batch)
    d_loss = d_out[0] if isinstance(d_out, tuple) else d_out
    return d_loss.item(), g_out.item(), d_out


def mean(values):
    return sum(values) / len(values)


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_gan_is_binary_cross_entropy_on_logits():
    d, g, _ = run(gan.GANObjective(gan.GANParams()))
    expected_d = -mean([math.log(sigmoid(r)) for r in REAL.tolist()]) - mean([math.log(1 - sigmoid(f)) for f in FAKE.tolist()])
    assert d == pytest.approx(expected_d, rel=1e-5)
    assert g == pytest.approx(-mean([math.log(sigmoid(f)) for f in FAKE.tolist()]), rel=1e-5)
    _, g_minimax, _ = run(gan.GANObjective(gan.GANParams(generator_loss="minimax")))
    assert g_minimax == pytest.approx(mean([math.log(1 - sigmoid(f)) for f in FAKE.tolist()]), rel=1e-5)


def test_wgan_is_the_difference_of_mean_scores():
    d, g, (_, extras) = run(wgan.WGANObjective(wgan.WGANParams()))
    assert d == pytest.approx(mean(FAKE.tolist()) - mean(REAL.tolist()))  # 0.375 - 0.375
    assert g == pytest.approx(-mean(FAKE.tolist()))
    assert extras["critic/wasserstein"].item() == pytest.approx(mean(REAL.tolist()) - mean(FAKE.tolist()))
    assert wgan.critic_loss(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 1.0])).item() == pytest.approx(-1.5)


def test_wgan_gp_adds_lambda_times_the_penalty():
    # D(x) = x: gradient 1 everywhere, penalty 0.  D(x) = 3x: gradient 3, penalty (3 - 1)^2 = 4.
    d, g, (_, extras) = run(wgan_gp.WGANGPObjective(wgan_gp.WGANGPParams()))
    assert d == pytest.approx(mean(FAKE.tolist()) - mean(REAL.tolist()))
    assert extras["critic/gp"].item() == pytest.approx(0.0)
    d3, g3, (_, extras3) = run(wgan_gp.WGANGPObjective(wgan_gp.WGANGPParams(gp_weight=2.5)), k=3.0)
    assert extras3["critic/gp"].item() == pytest.approx(4.0)
    assert d3 == pytest.approx(3 * mean(FAKE.tolist()) - 3 * mean(REAL.tolist()) + 2.5 * 4.0)
    assert extras3["critic/wasserstein"].item() == pytest.approx(3 * (mean(REAL.tolist()) - mean(FAKE.tolist())))
    assert g3 == pytest.approx(-3 * mean(FAKE.tolist()))
    assert not any(v.requires_grad for v in extras3.values())


def test_hinge_matches_lim_and_ye():
    d, g, _ = run(hinge.HingeObjective(hinge.HingeParams()))
    expected_d = mean([max(0.0, 1 - r) for r in REAL.tolist()]) + mean([max(0.0, 1 + f) for f in FAKE.tolist()])
    assert d == pytest.approx(expected_d)  # (0.5 + 0 + 2 + 1)/4 + (0 + 1 + 1.5 + 4)/4
    assert d == pytest.approx(0.875 + 1.625)
    assert g == pytest.approx(-mean(FAKE.tolist()))


def test_lsgan_matches_mao_et_al_with_a0_b1_c1():
    d, g, _ = run(lsgan.LSGANObjective(lsgan.LSGANParams()))
    expected_d = 0.5 * mean([(r - 1) ** 2 for r in REAL.tolist()]) + 0.5 * mean([f**2 for f in FAKE.tolist()])
    assert d == pytest.approx(expected_d)
    assert g == pytest.approx(0.5 * mean([(f - 1) ** 2 for f in FAKE.tolist()]))


def test_lsgan_pearson_coding_matches_mao_et_al_with_a_minus1_b1_c0():
    d, g, _ = run(lsgan.LSGANObjective(lsgan.LSGANParams(coding="pearson")))
    expected_d = 0.5 * mean([(r - 1) ** 2 for r in REAL.tolist()]) + 0.5 * mean([(f + 1) ** 2 for f in FAKE.tolist()])
    assert d == pytest.approx(expected_d)  # (1.125 + 1.625) / 2 with these scores
    assert g == pytest.approx(0.5 * mean([f**2 for f in FAKE.tolist()]))
    a, b, c = lsgan.CODINGS["pearson"]
    assert (b - c, b - a) == (1, 2)  # the paper's conditions for the Pearson chi^2 divergence (its Eq. 8)


def test_discriminator_steps_do_not_reach_the_generator():
    models = nn.ModuleDict({"generator": Fixed(FAKE), "discriminator": Scale(2.0)})
    for objective in (wgan.WGANObjective(wgan.WGANParams()), wgan_gp.WGANGPObjective(wgan_gp.WGANGPParams()),
                      hinge.HingeObjective(hinge.HingeParams()), lsgan.LSGANObjective(lsgan.LSGANParams())):
        d_phase, _ = objective.phases(models)
        out = d_phase.loss(models, StepBatch(REAL[:, None], len(REAL), 1, torch.device("cpu")))
        loss = out[0] if isinstance(out, tuple) else out
        (grad,) = torch.autograd.grad(loss, [models.generator.values], allow_unused=True)
        assert grad is None, type(objective).__name__


@pytest.mark.parametrize(
    "params_type, bad",
    [
        (wgan.WGANParams, {"clip_value": 0.0}),
        (wgan.WGANParams, {"critic_steps": 0}),
        (wgan.WGANParams, {"lr_critic": -1e-4}),
        (wgan_gp.WGANGPParams, {"gp_weight": -1.0}),
        (wgan_gp.WGANGPParams, {"betas": (0.0, 1.0)}),
        (wgan_gp.WGANGPParams, {"lr_generator": 0.0}),
        (hinge.HingeParams, {"discriminator_steps": 0}),
        (lsgan.LSGANParams, {"betas": (-0.1, 0.9)}),
    ],
)
def test_parameters_are_validated(params_type, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        params_type(**bad)
