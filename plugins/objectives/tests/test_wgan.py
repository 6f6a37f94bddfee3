"""Weight clipping and the phase schedules, stepped the way the training loop steps them."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_registry import Batch as StepBatch
from gan_registry import IncompatibleError
from gan_registry_objectives import hinge, lsgan, wgan, wgan_gp


def models(latent: int = 4) -> nn.ModuleDict:
    generator = nn.Sequential(nn.Linear(latent, 16), nn.ReLU(), nn.Linear(16, 2))
    critic = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    with torch.no_grad():
        for p in critic.parameters():
            p.uniform_(-1, 1)  # far outside [-0.01, 0.01], so clipping has work to do
    return nn.ModuleDict({"generator": generator, "discriminator": critic})


def step(phase, nets, real=None, latent: int = 4):
    """One optimiser step of a phase, as gan_registry.training.Trainer does it."""
    batch = StepBatch(real, 32 if real is None else real.shape[0], latent, torch.device("cpu"))
    out = phase.loss(nets, batch)
    loss = out[0] if isinstance(out, tuple) else out
    phase.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    phase.optimizer.step()
    if phase.after_step is not None:
        phase.after_step(nets)


@pytest.mark.parametrize("clip", [0.01, 0.05])
def test_clipping_keeps_every_critic_weight_in_range(clip):
    torch.manual_seed(0)
    nets = models()
    critic_phase, generator_phase = wgan.WGANObjective(wgan.WGANParams(clip_value=clip)).phases(nets)
    assert max(p.abs().max().item() for p in nets.discriminator.parameters()) > clip
    step(critic_phase, nets, real=torch.randn(32, 2))
    values = torch.cat([p.detach().flatten() for p in nets.discriminator.parameters()])
    assert values.abs().max().item() == pytest.approx(clip)  # clamped, and some weights sit on the bound
    assert (values.abs() <= clip).all()
    before = [p.detach().clone() for p in nets.generator.parameters()]
    step(generator_phase, nets)
    assert (torch.cat([p.detach().flatten() for p in nets.discriminator.parameters()]).abs() <= clip).all()
    assert any(not torch.equal(a, b) for a, b in zip(before, nets.generator.parameters()))


@pytest.mark.parametrize(
    "objective, optimizer, repeats, lr, betas",
    [
        (wgan.WGANObjective(wgan.WGANParams()), torch.optim.RMSprop, 5, 5e-5, None),
        (wgan_gp.WGANGPObjective(wgan_gp.WGANGPParams()), torch.optim.Adam, 5, 2e-4, (0.0, 0.9)),
        (wgan_gp.WGANGPObjective(wgan_gp.WGANGPParams(critic_steps=3, lr_critic=3e-4, betas=(0.5, 0.99))),
         torch.optim.Adam, 3, 3e-4, (0.5, 0.99)),
        (hinge.HingeObjective(hinge.HingeParams()), torch.optim.Adam, 1, 2e-4, (0.5, 0.999)),
        (lsgan.LSGANObjective(lsgan.LSGANParams()), torch.optim.Adam, 1, 2e-4, (0.5, 0.999)),
    ],
    ids=["wgan", "wgan-gp", "wgan-gp-custom", "hinge", "lsgan"],
)
def test_phases_follow_the_parameters(objective, optimizer, repeats, lr, betas):
    nets = models()
    d_phase, g_phase = objective.phases(nets)
    assert d_phase.repeats == repeats and d_phase.uses_real
    assert g_phase.repeats == 1 and not g_phase.uses_real
    assert isinstance(d_phase.optimizer, optimizer) and isinstance(g_phase.optimizer, optimizer)
    group = d_phase.optimizer.param_groups[0]
    assert group["lr"] == lr
    if betas is not None:
        assert tuple(group["betas"]) == betas
    assert {id(p) for p in group["params"]} == {id(p) for p in nets.discriminator.parameters()}
    assert {id(p) for p in g_phase.optimizer.param_groups[0]["params"]} == {id(p) for p in nets.generator.parameters()}


def test_needs_follow_the_penalty_weight():
    from gan_registry.testing import build

    with pytest.raises(IncompatibleError, match="per sample"):
        build(arch="dcgan", objective="wgan-gp", image_size=16, params={"discriminator": {"norm": "batch"}})
    built = build(arch="dcgan", objective="wgan-gp", image_size=16,
                  params={"discriminator": {"norm": "batch"}, "objective": {"gp_weight": 0}})
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in built.networks["discriminator"].modules())
    with pytest.raises(IncompatibleError, match="per sample"):  # a penalty a schedule turns on later counts
        build(arch="dcgan", objective="wgan-gp", image_size=16,
              params={"discriminator": {"norm": "batch"}, "objective": {"gp_weight": "schedule(0, 10)"}})
