"""Helpers shared by the objective modules (private: not an entry point, not a plugin)."""
from __future__ import annotations

from typing import Iterable


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
