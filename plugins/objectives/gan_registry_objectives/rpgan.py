"""Relativistic pairing GAN (Jolicoeur-Martineau 2018) with zero-centred R1 and R2: the R3GAN recipe.

Huang et al. (NeurIPS 2024, "The GAN is dead; long live the GAN! A Modern GAN Baseline") show that this loss,
regularised by R1 and R2 together, converges locally and keeps every mode, without the usual tricks.
Each real sample is paired with a generated one: D learns that the real one of a pair scores higher,
G that its sample does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from gan_registry import Objective, Phase, hookimpl

from . import _common


@dataclass
class RpGANParams(_common.PenaltyParams):
    r1: float = field(default=0.1, metadata={"help": "gamma of R1 on real samples (R3GAN: R1 and R2 alike; 0: off)"})
    r2: float = field(default=0.1, metadata={"help": "gamma of R2 on generated samples (0: off)"})
    discriminator_steps: int = field(default=1, metadata={"help": "discriminator steps per generator step"})
    lr_discriminator: float = field(default=2e-4, metadata={"help": "Adam learning rate of the discriminator"})
    lr_generator: float = field(default=2e-4, metadata={"help": "Adam learning rate of the generator"})
    betas: tuple[float, float] = field(default=(0.0, 0.99), metadata={"help": "Adam betas (R3GAN's)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        _common.check_repeats(discriminator_steps=self.discriminator_steps)
        _common.check_positive(lr_discriminator=self.lr_discriminator, lr_generator=self.lr_generator)
        _common.check_betas(self.betas)


def discriminator_loss(real_scores, fake_scores):
    """E[softplus(-(D(x) - D(G(z))))] over pairs: -log sigmoid of how much the real one of each pair wins by."""
    import torch.nn.functional as F

    return F.softplus(fake_scores - real_scores).mean()


def generator_loss(fake_scores, real_scores):
    """E[softplus(-(D(G(z)) - D(x)))] over pairs: the same game with the roles swapped."""
    import torch.nn.functional as F

    return F.softplus(real_scores - fake_scores).mean()


class RpGANObjective:
    def __init__(self, params: RpGANParams) -> None:
        self.params = params

    def discriminator_step(self, models, batch):
        real_scores, fake_scores, penalty, logged = _common.penalised_scores(models, batch, self.params)
        return discriminator_loss(real_scores, fake_scores) + penalty, logged

    def generator_step(self, models, batch):
        fake_scores = _common.generator_scores(models, batch)
        real_scores = _common.scores(models.discriminator, batch.real)
        return generator_loss(fake_scores, real_scores)

    def phases(self, models):
        p = self.params
        return [
            Phase(name="discriminator", loss=self.discriminator_step, repeats=p.discriminator_steps,
                  optimizer=_common.adam(models.discriminator.parameters(), p.lr_discriminator, p.betas),
                  hyperparameters=_common.adam_settings("lr_discriminator")),
            # The generator's loss pairs its samples with real ones, so its phase takes a real batch too.
            Phase(name="generator", loss=self.generator_step,
                  optimizer=_common.adam(models.generator.parameters(), p.lr_generator, p.betas),
                  hyperparameters=_common.adam_settings("lr_generator")),
        ]


@hookimpl
def register_objectives(register):
    register(Objective(name="rpgan", summary="Relativistic pairing GAN + R1 + R2 (the R3GAN loss): Adam 2e-4 (0, 0.99)",
                       params=RpGANParams, factory=RpGANObjective, needs=_common.penalty_needs))
