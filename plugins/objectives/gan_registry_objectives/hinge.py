"""Hinge loss GAN (Lim & Ye 2017; as used by SAGAN, Zhang et al. 2019)."""
from __future__ import annotations

from dataclasses import dataclass, field

from gan_registry import Objective, hookimpl

from . import _common


@dataclass
class HingeParams(_common.PenaltyParams):
    discriminator_steps: int = field(default=1, metadata={"help": "discriminator steps per generator step"})
    # DCGAN's optimiser, not SAGAN's two time-scale rule (D 4e-4, G 1e-4, betas (0, 0.9)), the defaults until
    # gan-registry-objectives 0.6: on digits at 1,000 steps dcgan + hinge read classifier FID 47.0 (8.8x the
    # real-vs-real floor, precision 0.36, recall 0.57) with SAGAN's and 11.4 (2.1x; 0.53, 0.78) with these. Equal
    # rates also served the conditional ResNet best (docs/conditional.md).
    lr_discriminator: float = field(default=2e-4, metadata={"help": "Adam learning rate of D (DCGAN's)"})
    lr_generator: float = field(default=2e-4, metadata={"help": "Adam learning rate of G (DCGAN's)"})
    betas: tuple[float, float] = field(default=(0.5, 0.999), metadata={"help": "Adam betas (DCGAN's)"})

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
    register(Objective(name="hinge", summary="Hinge loss (Lim & Ye; SAGAN): Adam 2e-4 (0.5, 0.999)",
                       params=HingeParams, needs=_common.penalty_needs, factory=HingeObjective))
