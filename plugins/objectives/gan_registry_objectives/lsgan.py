"""Least squares GAN (Mao et al. 2017): the discriminator regresses real and generated samples onto two targets,
the generator pulls its samples' scores onto a third. Both codings of the paper: a=0, b=1, c=1 (its 0-1 coding, used
in its experiments) and a=-1, b=1, c=0 (b - c = 1 and b - a = 2, under which the game minimises the Pearson
chi-squared divergence, its Eq. 8)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gan_registry import Objective, hookimpl

from . import _common

CODINGS = {"binary": (0.0, 1.0, 1.0), "pearson": (-1.0, 1.0, 0.0)}
"""(a, b, c): the fake target, the real target, and the target the generator pulls fakes towards."""
FAKE_TARGET, REAL_TARGET, GENERATOR_TARGET = CODINGS["binary"]


@dataclass
class LSGANParams(_common.PenaltyParams):
    coding: Literal["binary", "pearson"] = field(default="binary", metadata={"help": (
        "binary: a=0, b=1, c=1 (the paper's experiments); pearson: a=-1, b=1, c=0 (minimises Pearson chi^2)")})
    discriminator_steps: int = field(default=1, metadata={"help": "discriminator steps per generator step"})
    lr_discriminator: float = field(default=2e-4, metadata={"help": "Adam learning rate of the discriminator"})
    lr_generator: float = field(default=2e-4, metadata={"help": "Adam learning rate of the generator"})
    betas: tuple[float, float] = field(default=(0.5, 0.999), metadata={"help": "Adam betas (the paper's beta1 0.5)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        _common.check_positive(lr_discriminator=self.lr_discriminator, lr_generator=self.lr_generator)
        _common.check_repeats(discriminator_steps=self.discriminator_steps)
        _common.check_betas(self.betas)


def discriminator_loss(real_scores, fake_scores, coding: str = "binary"):
    """1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]."""
    fake_target, real_target, _ = CODINGS[coding]
    return 0.5 * ((real_scores - real_target) ** 2).mean() + 0.5 * ((fake_scores - fake_target) ** 2).mean()


def generator_loss(fake_scores, coding: str = "binary"):
    """1/2 E[(D(G(z)) - c)^2]."""
    return 0.5 * ((fake_scores - CODINGS[coding][2]) ** 2).mean()


class LSGANObjective(_common.ScoreLossObjective):
    def discriminator_loss(self, real_scores, fake_scores):
        return discriminator_loss(real_scores, fake_scores, self.params.coding)

    def generator_loss(self, fake_scores):
        return generator_loss(fake_scores, self.params.coding)


@hookimpl
def register_objectives(register):
    register(Objective(name="lsgan", summary="Least squares GAN (Mao et al.): a=0, b=1, c=1 (or -1, 1, 0); Adam 2e-4 (0.5, 0.999)",
                       params=LSGANParams, needs=_common.penalty_needs, factory=LSGANObjective))
