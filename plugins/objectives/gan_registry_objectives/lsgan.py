"""Least squares GAN (Mao et al. 2017) with the 0-1 coding a=0, b=1, c=1."""
from __future__ import annotations

from dataclasses import dataclass, field

from gan_registry import Objective, hookimpl

from . import _common

FAKE_TARGET, REAL_TARGET, GENERATOR_TARGET = 0.0, 1.0, 1.0  # a, b, c in the paper


@dataclass
class LSGANParams(_common.PenaltyParams):
    discriminator_steps: int = field(default=1, metadata={"help": "discriminator steps per generator step"})
    lr_discriminator: float = field(default=2e-4, metadata={"help": "Adam learning rate of the discriminator"})
    lr_generator: float = field(default=2e-4, metadata={"help": "Adam learning rate of the generator"})
    betas: tuple[float, float] = field(default=(0.5, 0.999), metadata={"help": "Adam betas (the paper's beta1 0.5)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        _common.check_positive(lr_discriminator=self.lr_discriminator, lr_generator=self.lr_generator)
        _common.check_repeats(discriminator_steps=self.discriminator_steps)
        _common.check_betas(self.betas)


def discriminator_loss(real_scores, fake_scores):
    """1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]."""
    return 0.5 * ((real_scores - REAL_TARGET) ** 2).mean() + 0.5 * ((fake_scores - FAKE_TARGET) ** 2).mean()


def generator_loss(fake_scores):
    """1/2 E[(D(G(z)) - c)^2]."""
    return 0.5 * ((fake_scores - GENERATOR_TARGET) ** 2).mean()


class LSGANObjective(_common.ScoreLossObjective):
    discriminator_loss = staticmethod(discriminator_loss)
    generator_loss = staticmethod(generator_loss)


@hookimpl
def register_objectives(register):
    register(Objective(name="lsgan", summary="Least squares GAN (Mao et al.): a=0, b=1, c=1; Adam 2e-4 (0.5, 0.999)",
                       params=LSGANParams, needs=_common.penalty_needs, factory=LSGANObjective))
