"""Wasserstein GAN with weight clipping (Arjovsky et al. 2017, Algorithm 1)."""
from __future__ import annotations

from dataclasses import dataclass, field

from gan_registry import Objective, hookimpl

from . import _common


@dataclass
class WGANParams:
    clip_value: float = field(default=0.01, metadata={"help": "critic weights are clamped to [-c, c] after each critic step"})
    critic_steps: int = field(default=5, metadata={"help": "critic steps per generator step (n_critic)"})
    lr_critic: float = field(default=5e-5, metadata={"help": "RMSprop learning rate of the critic"})
    lr_generator: float = field(default=5e-5, metadata={"help": "RMSprop learning rate of the generator"})

    def __post_init__(self) -> None:
        _common.check_positive(clip_value=self.clip_value, lr_critic=self.lr_critic, lr_generator=self.lr_generator)
        _common.check_repeats(critic_steps=self.critic_steps)


def critic_loss(real_scores, fake_scores):
    """E[D(fake)] - E[D(real)]: minimising it maximises the critic's Wasserstein estimate."""
    return fake_scores.mean() - real_scores.mean()


def generator_loss(fake_scores):
    """-E[D(G(z))]."""
    return -fake_scores.mean()


def clip_weights(module, clip_value: float) -> None:
    """Clamp every parameter in place: the paper's crude way of keeping the critic K-Lipschitz."""
    import torch

    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-clip_value, clip_value)


class WGANObjective:
    def __init__(self, params: WGANParams) -> None:
        self.params = params

    def critic_step(self, models, batch):
        real, fake, _ = _common.real_and_fake_scores(models, batch)
        return critic_loss(real, fake), {"critic/wasserstein": (real.mean() - fake.mean()).detach(),
                                         **_common.score_means("critic", real, fake)}

    def generator_step(self, models, batch):
        return generator_loss(_common.generator_scores(models, batch))

    def phases(self, models):
        p = self.params
        return _common.two_phases(
            d_name="critic", d_loss=self.critic_step, d_repeats=p.critic_steps,
            d_optimizer=_common.rmsprop(models.discriminator.parameters(), p.lr_critic),
            d_after_step=lambda m: clip_weights(m.discriminator, p.clip_value),
            g_loss=self.generator_step, g_optimizer=_common.rmsprop(models.generator.parameters(), p.lr_generator),
            d_hyperparameters={"lr": "lr_critic"}, g_hyperparameters={"lr": "lr_generator"},
        )


@hookimpl
def register_objectives(register):
    register(Objective(name="wgan", summary="Wasserstein GAN, weight clipping: RMSprop 5e-5, clip 0.01, 5 critic steps",
                       params=WGANParams, factory=WGANObjective, suggests=_common.FEWER_STEPS))
