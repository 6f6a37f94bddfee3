"""Least squares GAN (Mao et al. 2017) with the 0-1 coding a=0, b=1, c=1."""
from __future__ import annotations

from dataclasses import dataclass, field

from gan_registry import Objective, Phase, hookimpl

from . import _common

FAKE_TARGET, REAL_TARGET, GENERATOR_TARGET = 0.0, 1.0, 1.0  # a, b, c in the paper


@dataclass
class LSGANParams:
    discriminator_steps: int = field(default=1, metadata={"help": "discriminator steps per generator step"})
    lr_discriminator: float = field(default=2e-4, metadata={"help": "Adam learning rate of the discriminator"})
    lr_generator: float = field(default=2e-4, metadata={"help": "Adam learning rate of the generator"})
    betas: tuple[float, float] = field(default=(0.5, 0.999), metadata={"help": "Adam betas (the paper's beta1 0.5)"})

    def __post_init__(self) -> None:
        _common.check_positive(lr_discriminator=self.lr_discriminator, lr_generator=self.lr_generator)
        _common.check_steps(discriminator_steps=self.discriminator_steps)
        _common.check_betas(self.betas)


def discriminator_loss(real_scores, fake_scores):
    """1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]."""
    return 0.5 * ((real_scores - REAL_TARGET) ** 2).mean() + 0.5 * ((fake_scores - FAKE_TARGET) ** 2).mean()


def generator_loss(fake_scores):
    """1/2 E[(D(G(z)) - c)^2]."""
    return 0.5 * ((fake_scores - GENERATOR_TARGET) ** 2).mean()


class LSGANObjective:
    def __init__(self, params: LSGANParams) -> None:
        self.params = params

    def discriminator_step(self, models, batch):
        real_scores, fake_scores, _ = _common.real_and_fake_scores(models, batch)
        return discriminator_loss(real_scores, fake_scores)

    def generator_step(self, models, batch):
        return generator_loss(_common.generator_scores(models, batch))

    def phases(self, models):
        p = self.params
        return [
            Phase(name="discriminator", loss=self.discriminator_step, repeats=p.discriminator_steps,
                  optimizer=_common.adam(models.discriminator.parameters(), p.lr_discriminator, p.betas)),
            Phase(name="generator", loss=self.generator_step, uses_real=False,
                  optimizer=_common.adam(models.generator.parameters(), p.lr_generator, p.betas)),
        ]


@hookimpl
def register_objectives(register):
    register(Objective(name="lsgan", summary="Least squares GAN (Mao et al.): a=0, b=1, c=1; Adam 2e-4 (0.5, 0.999)",
                       params=LSGANParams, factory=LSGANObjective))
