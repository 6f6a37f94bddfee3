"""The original GAN objective (Goodfellow et al. 2014), on logits for numerical stability."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gan_registry import Objective, hookimpl

from . import _common


@dataclass
class GANParams(_common.PenaltyParams):
    generator_loss: Literal["non-saturating", "minimax"] = field(
        default="non-saturating",
        metadata={"help": "non-saturating: max log D(G(z)); minimax: min log(1 - D(G(z))) as in the paper's game"},
    )
    label_smoothing: float = field(
        default=0.0, metadata={"help": "one-sided: real targets become 1 - label_smoothing (Salimans et al. 2016)"}
    )
    discriminator_steps: int = field(default=1, metadata={"help": "discriminator steps per generator step"})
    lr_generator: float = field(default=2e-4, metadata={"help": "Adam learning rate of the generator"})
    lr_discriminator: float = field(default=2e-4, metadata={"help": "Adam learning rate of the discriminator"})
    betas: tuple[float, float] = field(default=(0.5, 0.999), metadata={"help": "Adam betas (DCGAN's)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError("label_smoothing must be in [0, 1)")
        _common.check_repeats(discriminator_steps=self.discriminator_steps)
        _common.check_positive(lr_discriminator=self.lr_discriminator, lr_generator=self.lr_generator)
        _common.check_betas(self.betas)


class GANObjective(_common.ScoreLossObjective):
    def discriminator_loss(self, real_logits, fake_logits):
        import torch
        import torch.nn.functional as F

        real_target = torch.full_like(real_logits, 1.0 - self.params.label_smoothing)
        return F.binary_cross_entropy_with_logits(real_logits, real_target) + F.binary_cross_entropy_with_logits(
            fake_logits, torch.zeros_like(fake_logits)
        )

    def generator_loss(self, logits):
        import torch.nn.functional as F

        if self.params.generator_loss == "minimax":
            return -F.softplus(logits).mean()  # log(1 - sigmoid(l)) = -softplus(l)
        return F.softplus(-logits).mean()  # -log sigmoid(l)


@hookimpl
def register_objectives(register):
    register(Objective(name="gan", summary="Original GAN: BCE on logits, non-saturating generator loss by default",
                       params=GANParams, needs=_common.penalty_needs, factory=GANObjective))
