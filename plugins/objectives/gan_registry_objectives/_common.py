"""Helpers shared by the objective modules (private: not an entry point, not a plugin)."""
from __future__ import annotations

from typing import Iterable

from gan_registry import Phase


def check_positive(**values: float) -> None:
    """Raise ValueError naming the first value that is not > 0 (for `__post_init__` checks)."""
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")


def check_steps(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")


def check_betas(betas: tuple[float, float]) -> None:
    if not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"betas must each be in [0, 1), got {betas}")


def adam(parameters: Iterable, lr: float, betas: tuple[float, float]):
    from torch.optim import Adam

    return Adam(parameters, lr=lr, betas=tuple(betas))


def rmsprop(parameters: Iterable, lr: float):
    from torch.optim import RMSprop

    return RMSprop(parameters, lr=lr)


def scores(discriminator, x):
    """One raw score per sample, shape (N,): discriminators may return (N,) or (N, 1)."""
    return discriminator(x).reshape(-1)


def fake_batch(models, batch):
    """Generated samples for a discriminator step: no graph through the generator (it is not updated here)."""
    import torch

    with torch.no_grad():
        return models.generator(batch.noise())


def real_and_fake_scores(models, batch):
    """(D(real), D(fake)) for a discriminator step; also returns the fake batch for penalties."""
    fake = fake_batch(models, batch)
    return scores(models.discriminator, batch.real), scores(models.discriminator, fake), fake


def generator_scores(models, batch):
    """D(G(z)) with the graph through the generator, for a generator step."""
    return scores(models.discriminator, models.generator(batch.noise()))


def two_phases(*, d_name: str, d_loss, d_optimizer, d_repeats: int, g_loss, g_optimizer, d_after_step=None) -> list:
    """The usual schedule: `d_repeats` discriminator (or critic) steps, then one generator step."""
    return [
        Phase(name=d_name, loss=d_loss, optimizer=d_optimizer, repeats=d_repeats, after_step=d_after_step),
        Phase(name="generator", loss=g_loss, optimizer=g_optimizer, uses_real=False),
    ]


class ScoreLossObjective:
    """An objective whose losses are functions of the raw scores, trained by two Adam phases.

    Subclasses define `discriminator_loss(real_scores, fake_scores)` and `generator_loss(fake_scores)`;
    their params have `discriminator_steps`, `lr_discriminator`, `lr_generator` and `betas`.
    """

    def __init__(self, params) -> None:
        self.params = params

    def discriminator_step(self, models, batch):
        real_scores, fake_scores, _ = real_and_fake_scores(models, batch)
        return self.discriminator_loss(real_scores, fake_scores)

    def generator_step(self, models, batch):
        return self.generator_loss(generator_scores(models, batch))

    def phases(self, models):
        p = self.params
        return two_phases(
            d_name="discriminator", d_loss=self.discriminator_step, d_repeats=p.discriminator_steps,
            d_optimizer=adam(models.discriminator.parameters(), p.lr_discriminator, p.betas),
            g_loss=self.generator_step, g_optimizer=adam(models.generator.parameters(), p.lr_generator, p.betas),
        )
