"""Hinge loss GAN (Lim & Ye 2017; as used by SAGAN, Zhang et al. 2019)."""
from __future__ import annotations

from dataclasses import dataclass, field

from gan_registry import Objective, hookimpl

from . import _common


@dataclass
class HingeParams(_common.PenaltyParams):
    discriminator_steps: int = field(default=1, metadata={"help": "discriminator steps per generator step"})
    lr_discriminator: float = field(default=4e-4, metadata={"help": "Adam learning rate of D (SAGAN's two time-scale rule)"})
    lr_generator: float = field(default=1e-4, metadata={"help": "Adam learning rate of G (SAGAN's two time-scale rule)"})
    betas: tuple[float, float] = field(default=(0.0, 0.9), metadata={"help": "Adam betas (SAGAN's)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        _common.check_positive(lr_discriminator=self.lr_discriminator, lr_generator=self.lr_generator)
        _common.check_repeats(discriminator_steps=self.discriminator_steps)
        _common.check_betas(self.betas)


def discriminator_loss(real_scores, fake_scores):
    """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]: only scores inside the margin are pushed."""
    import torch.nn.functional as F

    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def generator_loss(fake_scores):
    """-E[D(G(z))]."""
    return -fake_scores.mean()


class HingeObjective(_common.ScoreLossObjective):
    discriminator_loss = staticmethod(discriminator_loss)
    generator_loss = staticmethod(generator_loss)


@hookimpl
def register_objectives(register):
    register(Objective(name="hinge", summary="Hinge loss (Lim & Ye; SAGAN): Adam D 4e-4, G 1e-4, betas (0, 0.9)",
                       params=HingeParams, needs=_common.penalty_needs, factory=HingeObjective))
