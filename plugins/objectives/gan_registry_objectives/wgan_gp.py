"""WGAN with gradient penalty (Gulrajani et al. 2017, Algorithm 1)."""
from __future__ import annotations

from dataclasses import dataclass, field

from gan_registry import Needs, Objective, Scale, hookimpl, input_gradients

from . import _common
from .wgan import WGANObjective, critic_loss


@dataclass
class WGANGPParams:
    gp_weight: float = field(default=10.0, metadata={"help": "lambda: weight of the gradient penalty"})
    critic_steps: int = field(default=5, metadata={"help": "critic steps per generator step (n_critic)"})
    # 2e-4, DCGAN's rate, not the paper's 1e-4: the paper trains 200,000 generator steps, a default run here a few
    # hundred. dcgan on digits at 300 steps: FID 11.9 -> 7.9 (2.2x -> 1.5x the real-vs-real floor).
    lr_critic: float = field(default=2e-4, metadata={"help": "Adam learning rate of the critic (the paper: 1e-4)"})
    lr_generator: float = field(default=2e-4, metadata={"help": "Adam learning rate of the generator (the paper: 1e-4)"})
    betas: tuple[float, float] = field(default=(0.0, 0.9), metadata={"help": "Adam betas (the paper's)"})

    def __post_init__(self) -> None:
        _common.check_positive(lr_critic=self.lr_critic, lr_generator=self.lr_generator)
        if self.gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0, got {self.gp_weight}")
        _common.check_repeats(critic_steps=self.critic_steps)
        _common.check_betas(self.betas)


def gradient_penalty(critic, real, fake, alpha=None, *, create_graph: bool = True):
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = alpha * real + (1 - alpha) * fake, unweighted.

    alpha: one value per sample, shape (N,) or (N, 1, ...); drawn uniformly from [0, 1) when None.
    create_graph must stay True in training: the penalty is a function of a gradient, and only
    with the graph of that gradient kept does the penalty's own backward reach the critic's
    parameters (with False it is a constant, and trains nothing).
    """
    import torch

    n = real.shape[0]
    per_sample = (n,) + (1,) * (real.dim() - 1)  # broadcasts over every sample dimension
    if alpha is None:
        alpha = torch.rand(per_sample, device=real.device, dtype=real.dtype)
    else:
        alpha = alpha.reshape(per_sample).to(real)
    # Detached: the penalty is on the critic alone, never a path into the generator.
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = _common.scores(critic, x_hat)
    # Sum of scores: each sample's score depends on its own input only (hence no BatchNorm),
    # so d(sum)/d(x_hat_i) is the gradient of D at x_hat_i.
    grad = input_gradients(scores, x_hat, create_graph=create_graph)  # right under --precision 16 and bf16
    norms = grad.flatten(start_dim=1).norm(2, dim=1)  # per sample, over all of its dimensions
    return ((norms - 1) ** 2).mean()


class WGANGPObjective(WGANObjective):
    """WGAN with the clipping replaced by the gradient penalty (and RMSprop by Adam)."""

    def critic_step(self, models, batch):
        real_scores, fake_scores, fake = _common.real_and_fake_scores(models, batch)
        # The batch's own draw: in a distributed run each rank's weights are its slice of the global batch's.
        gp = gradient_penalty(models.discriminator, batch.real, fake, alpha=batch.rand())
        loss = critic_loss(real_scores, fake_scores) + self.params.gp_weight * gp
        wasserstein = (real_scores.mean() - fake_scores.mean()).detach()
        return loss, {"critic/gp": gp.detach(), "critic/wasserstein": wasserstein,
                      **_common.score_means("critic", real_scores, fake_scores)}

    def phases(self, models):
        p = self.params
        return _common.two_phases(
            d_name="critic", d_loss=self.critic_step, d_repeats=p.critic_steps,
            d_optimizer=_common.adam(models.discriminator.parameters(), p.lr_critic, p.betas),
            g_loss=self.generator_step,
            g_optimizer=_common.adam(models.generator.parameters(), p.lr_generator, p.betas),
            d_hyperparameters=_common.adam_settings("lr_critic"), g_hyperparameters=_common.adam_settings("lr_generator"),
        )


STEPS = {"steps": Scale(0.28)}
"""28 % of the architecture's steps: five critic steps, each with a penalty's double backward, make a generator step
cost about five of gan's on DCGAN (5.8 on the SNGAN ResNet). dcgan's 1,000 become 280: at 0.3, 300 steps measured
10.0 CPU-minutes alone on digits and 10.9 in `gan matrix` beside other cells, at the edge of the 10-minute budget of
a default run; the resnet's 600 become 168 (11.2 CPU-minutes at 180)."""


@hookimpl
def register_objectives(register):
    register(Objective(name="wgan-gp", summary="WGAN with gradient penalty: lambda 10, 5 critic steps, Adam 2e-4 (0, 0.9)",
                       params=WGANGPParams, factory=WGANGPObjective, suggests=STEPS,
                       needs=needs))


def needs(params: WGANGPParams) -> Needs:
    # The penalty is per sample: BatchNorm would make D(x_i) depend on the whole batch. Without the
    # penalty (gp_weight=0) nothing forbids it.
    penalised = _common.on_now_or_later(params.gp_weight)
    return Needs(discriminator_batchnorm=not penalised, input_gradients=penalised)
