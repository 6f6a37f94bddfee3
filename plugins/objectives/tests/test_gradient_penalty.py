"""The WGAN-GP penalty, checked on real autograd: per-sample alpha, per-sample norms, create_graph."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_registry_objectives.wgan import critic_loss
from gan_registry_objectives.wgan_gp import gradient_penalty


def small_critic(in_dim: int = 2, hidden: int = 32) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
                         nn.Linear(hidden, 1))


def parameter_grads(module: nn.Module, loss: torch.Tensor) -> list[torch.Tensor]:
    params = list(module.parameters())
    return [g if g is not None else torch.zeros_like(p)
            for g, p in zip(torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True), params)]


class Lambda(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def test_penalty_changes_the_critic_parameter_gradients():
    torch.manual_seed(0)
    critic = small_critic()
    real, fake = torch.randn(16, 2), torch.randn(16, 2) + 3
    alpha = torch.rand(16)
    wasserstein = critic_loss(critic(real).view(-1), critic(fake).view(-1))
    without = parameter_grads(critic, wasserstein)
    with_gp = parameter_grads(critic, wasserstein + 10 * gradient_penalty(critic, real, fake, alpha))
    difference = sum((a - b).abs().sum() for a, b in zip(with_gp, without))
    assert difference > 1e-3


def test_without_create_graph_the_penalty_trains_nothing():
    torch.manual_seed(0)
    critic = small_critic()
    real, fake = torch.randn(16, 2), torch.randn(16, 2) + 3
    alpha = torch.rand(16)
    wasserstein = critic_loss(critic(real).view(-1), critic(fake).view(-1))
    detached = gradient_penalty(critic, real, fake, alpha, create_graph=False)
    kept = gradient_penalty(critic, real, fake, alpha)
    # Same value either way...
    torch.testing.assert_close(detached, kept.detach())
    assert detached.item() > 0.01
    # ...but without the gradient's graph the penalty is a constant for the parameters:
    assert not detached.requires_grad
    without = parameter_grads(critic, wasserstein)
    with_detached = parameter_grads(critic, wasserstein + 10 * detached)
    for a, b in zip(with_detached, without):
        torch.testing.assert_close(a, b)
    assert any(g.abs().sum() > 0 for g in parameter_grads(critic, kept))


@pytest.mark.parametrize("shape", [(2,), (1, 3, 3)], ids=["points", "images"])
def test_linear_critic_has_gradient_norm_w_for_every_sample(shape):
    torch.manual_seed(1)
    n, dim = 8, torch.Size(shape).numel()
    w = torch.zeros(dim)
    w[0], w[-1] = 3.0, 4.0  # ||w|| = 5 (a single-dim sample would make w[0] and w[-1] the same)
    linear = nn.Linear(dim, 1)
    with torch.no_grad():
        linear.weight.copy_(w[None])
    critic = nn.Sequential(nn.Flatten(), linear)
    real, fake = torch.randn(n, *shape), torch.randn(n, *shape)
    # (||w|| - 1)^2 = 16, whatever alpha is: D is linear, its gradient is w everywhere.
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(16.0)
    assert gradient_penalty(critic, real, fake, torch.rand(n)).item() == pytest.approx(16.0)


def test_squared_norm_critic_matches_hand_computation():
    # D(x) = sum(x^2) has gradient 2 x_hat: a different norm for each sample.
    critic = Lambda(lambda x: (x**2).sum(dim=1))
    real = torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
    fake = torch.tensor([[-1.0, 1.0], [0.0, 0.0], [0.0, 1.0]])
    alpha = torch.tensor([0.5, 0.25, 0.5])
    # x_hat = [0, 1], [0.5, 0], [0, 2]  ->  ||2 x_hat|| = 2, 1, 4  ->  (norm - 1)^2 = 1, 0, 9
    expected = (1 + 0 + 9) / 3
    assert gradient_penalty(critic, real, fake, alpha).item() == pytest.approx(expected)
    assert gradient_penalty(critic, real, fake, alpha[:, None]).item() == pytest.approx(expected)


@pytest.mark.parametrize("shape", [(3,), (1, 2, 2)], ids=["points", "images"])
def test_alpha_is_drawn_per_sample(shape):
    seen = []

    def record(x):
        seen.append(x.detach().clone())
        return x.flatten(1).sum(dim=1)

    n = 64
    real, fake = torch.ones(n, *shape), torch.zeros(n, *shape)
    torch.manual_seed(2)
    gradient_penalty(Lambda(record), real, fake)
    (x_hat,) = seen
    # With real = 1 and fake = 0, x_hat_i = alpha_i in every coordinate of sample i.
    per_sample = x_hat.flatten(1)
    torch.testing.assert_close(per_sample, per_sample[:, :1].expand_as(per_sample))
    alphas = per_sample[:, 0]
    assert ((alphas >= 0) & (alphas <= 1)).all()
    assert alphas.unique().numel() == n  # not one alpha shared by the batch
    assert alphas.std() > 0.2  # spread over [0, 1] (uniform: std 0.29)


def test_penalty_alone_drives_the_critic_to_unit_gradient_norm():
    torch.manual_seed(3)
    critic = small_critic(hidden=64)
    optimizer = torch.optim.Adam(critic.parameters(), lr=1e-3)
    probe_real, probe_fake = torch.randn(256, 2), 2 * torch.randn(256, 2)
    probe_alpha = torch.rand(256)
    before = gradient_penalty(critic, probe_real, probe_fake, probe_alpha).item()
    for _ in range(300):
        loss = gradient_penalty(critic, torch.randn(64, 2), 2 * torch.randn(64, 2))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = gradient_penalty(critic, probe_real, probe_fake, probe_alpha).item()
    assert before > 0.1  # PyTorch's default init gives gradient norms well below 1
    assert after < 0.05 * before
