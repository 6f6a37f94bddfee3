"""Helpers shared by the objective modules (private: not an entry point, not a plugin)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from gan_registry import Needs, Phase, Scale, Schedule, input_gradients


def check_positive(**values: float) -> None:
    """Raise ValueError naming the first value that is not > 0 (for `__post_init__` checks)."""
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")


FEWER_STEPS = {"steps": Scale(0.4)}
"""The run length WGAN suggests (where the dataset suggests none): 40 % of the architecture's steps. Five critic
steps make each generator step cost about what 2.5 of gan's do on DCGAN, so DCGAN's 1,000 steps become 400 and keep
a digits run within its CPU budget, while an MLP, whose steps are cheap but many, gets 40 % of its own count instead
of a fixed one that starves it (`gan matrix` measures both). Without an architecture's steps the engine's 100 epochs
stand: an epoch counts the critic's batches too."""

MAX_REPEATS = 1000
"""Discriminator steps per generator step: WGAN's warm-up uses 100; a thousand is past any published schedule."""


def check_steps(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")


def check_repeats(**values: int) -> None:
    """Per-step repeat counts: at least 1, and few enough that a generator step ends in a run's lifetime."""
    check_steps(**values)
    for name, value in values.items():
        if value > MAX_REPEATS:
            raise ValueError(f"{name} must be at most {MAX_REPEATS} (steps per generator step), got {value}")


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
    """Generated samples for a discriminator step, detached (the generator is not updated here).

    `batch.fake` lets the engine hand the generator's step the same samples: one generator forward a step."""
    return batch.fake(models.generator).detach()


def real_and_fake_scores(models, batch):
    """(D(real), D(fake)) for a discriminator step; also returns the fake batch for penalties."""
    fake = fake_batch(models, batch)
    return scores(models.discriminator, batch.real), scores(models.discriminator, fake), fake


def score_means(phase: str, real_scores, fake_scores) -> dict:
    """The mean D(real) and D(fake) of a discriminator step, for the log (TensorBoard plots them side by side)."""
    return {f"{phase}/score_real": real_scores.mean().detach(), f"{phase}/score_fake": fake_scores.mean().detach()}


def generator_scores(models, batch):
    """D(G(z)) with the graph through the generator, for a generator step."""
    return scores(models.discriminator, batch.fake(models.generator))


def two_phases(*, d_name: str, d_loss, d_optimizer, d_repeats: int, g_loss, g_optimizer, d_after_step=None,
               d_hyperparameters: dict | None = None, g_hyperparameters: dict | None = None) -> list:
    """The usual schedule: `d_repeats` discriminator (or critic) steps, then one generator step. The
    hyperparameters name the parameters each optimiser was built with, so that a schedule on them moves it."""
    return [
        Phase(name=d_name, loss=d_loss, optimizer=d_optimizer, repeats=d_repeats, after_step=d_after_step,
              hyperparameters=d_hyperparameters or {}),
        Phase(name="generator", loss=g_loss, optimizer=g_optimizer, uses_real=False,
              hyperparameters=g_hyperparameters or {}),
    ]


def adam_settings(lr_name: str) -> dict:
    """What an Adam phase was built with: its rate's parameter and the shared betas."""
    return {"lr": lr_name, "betas": "betas"}


@dataclass
class PenaltyParams:
    """Zero-centred gradient penalties on the discriminator (Mescheder et al. 2018), with lazy regularisation."""

    r1: float = field(default=0.0, metadata={"help": "gamma of R1: gamma/2 E||grad_x D(x)||^2 on real samples (0: off)"})
    r2: float = field(default=0.0, metadata={"help": "gamma of R2: the same on generated samples (0: off)"})
    penalty_every: int = field(
        default=1, metadata={"help": "lazy regularisation: R1/R2 every k steps, scaled by k (StyleGAN2 uses 16)"})

    def __post_init__(self) -> None:
        for name in ("r1", "r2"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        check_steps(penalty_every=self.penalty_every)

    @property
    def penalised(self) -> bool:
        """A penalty is on, now or at the end of its schedule (what the networks must fit from the start)."""
        return any(on_now_or_later(value) for value in (self.r1, self.r2))


def on_now_or_later(weight: float) -> bool:
    """A weight above 0 now, or once its schedule ends: what the networks must fit from the first step."""
    return weight > 0 or (isinstance(weight, Schedule) and weight.end > 0)


def penalty_needs(params) -> Needs:
    """R1/R2 are per-sample gradients: BatchNorm would make D(x_i) depend on the whole batch."""
    return Needs(discriminator_batchnorm=not params.penalised, input_gradients=params.penalised)


def zero_centred_penalty(scores, inputs):
    """E ||grad_x D(x)||^2 over the batch, with the graph kept so that its backward trains D."""
    grad = input_gradients(scores, inputs)
    return grad.square().flatten(start_dim=1).sum(dim=1).mean()


def penalised_scores(models, batch, params):
    """(D(real), D(fake), the penalty term to add to D's loss, what to log) for a discriminator step.

    R1/R2 apply on the engine's steps that are multiples of `penalty_every`, scaled by it (the step count comes
    from the engine, so a resumed run regularises on the same steps as an unbroken one).
    """
    due = params.penalised and batch.step % params.penalty_every == 0
    real = batch.real.detach().requires_grad_(due and params.r1 > 0)
    fake = fake_batch(models, batch).requires_grad_(due and params.r2 > 0)
    real_scores, fake_scores = scores(models.discriminator, real), scores(models.discriminator, fake)
    penalty, logged = 0.0, score_means("discriminator", real_scores, fake_scores)
    for name, gamma, inputs, judged in (("r1", params.r1, real, real_scores), ("r2", params.r2, fake, fake_scores)):
        if due and gamma > 0:
            value = zero_centred_penalty(judged, inputs)
            penalty = penalty + gamma / 2 * params.penalty_every * value
            logged[f"discriminator/{name}"] = value.detach()
    return real_scores, fake_scores, penalty, logged


class ScoreLossObjective:
    """An objective whose losses are functions of the raw scores, trained by two Adam phases.

    Subclasses define `discriminator_loss(real_scores, fake_scores)` and `generator_loss(fake_scores)`;
    their params have `discriminator_steps`, `lr_discriminator`, `lr_generator` and `betas`, and those of
    `PenaltyParams` (R1/R2).
    """

    def __init__(self, params) -> None:
        self.params = params

    def discriminator_step(self, models, batch):
        real_scores, fake_scores, penalty, logged = penalised_scores(models, batch, self.params)
        return self.discriminator_loss(real_scores, fake_scores) + penalty, logged

    def generator_step(self, models, batch):
        return self.generator_loss(generator_scores(models, batch))

    def phases(self, models):
        p = self.params
        return two_phases(
            d_name="discriminator", d_loss=self.discriminator_step, d_repeats=p.discriminator_steps,
            d_optimizer=adam(models.discriminator.parameters(), p.lr_discriminator, p.betas),
            g_loss=self.generator_step, g_optimizer=adam(models.generator.parameters(), p.lr_generator, p.betas),
            d_hyperparameters=adam_settings("lr_discriminator"), g_hyperparameters=adam_settings("lr_generator"),
        )
