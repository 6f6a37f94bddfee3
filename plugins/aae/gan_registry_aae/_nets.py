"""The AAE's networks: encoders (data -> code), decoders (code -> data), latent discriminator.

Layer choices follow the PyTorch-GAN AAE (eriklindernoren/PyTorch-GAN, implementations/aae).
"""
from __future__ import annotations

import math

import torch
from torch import nn


from gan_registry import layers


def _batchnorm1d(width: int) -> nn.Module:
    return layers.norm("batch", width, maps=False)


_to_range = layers.to_range


class _Encoder(nn.Module):
    """A body to features, then two heads: the code's mean and log-variance.

    Training mode returns a reparameterised sample mean + exp(logvar / 2) * eps, the code the
    latent discriminator judges (as in the seed). Eval mode returns the mean, a deterministic
    code: `gan reconstruct` puts the networks in eval mode and expects repeatable results.
    """

    body: nn.Module

    def __init__(self, features: int, latent_dim: int) -> None:
        super().__init__()
        self.mean = nn.Linear(features, latent_dim)
        self.logvar = nn.Linear(features, latent_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mean(h), self.logvar(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, logvar = self.encode(x)
        if not self.training:
            return mean
        # randn_like draws from the global RNG, which checkpoints save: resuming stays exact.
        return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)


class MLPEncoder(_Encoder):
    def __init__(self, sample_shape, latent_dim: int, hidden: int) -> None:
        super().__init__(hidden, latent_dim)
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(sample_shape), hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, hidden),
            _batchnorm1d(hidden),
            nn.LeakyReLU(0.2, inplace=True),
        )


class ConvEncoder(_Encoder):
    """Two stride-2 4x4 convs (DCGAN-style) instead of the MLP body, for images."""

    def __init__(self, sample_shape, latent_dim: int, base: int) -> None:
        channels, height, width = sample_shape
        features = 2 * base * (height // 4) * (width // 4)
        super().__init__(features, latent_dim)
        self.body = nn.Sequential(
            nn.Conv2d(channels, base, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(base, 2 * base, 4, stride=2, padding=1),
            nn.BatchNorm2d(2 * base, eps=1e-5, momentum=0.1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
        )


class MLPDecoder(nn.Module):
    """Mirror of MLPEncoder: latent -> hidden -> hidden (BatchNorm) -> prod(sample_shape)."""

    def __init__(self, latent_dim: int, sample_shape, hidden: int, value_range) -> None:
        super().__init__()
        self.sample_shape, self.value_range = tuple(sample_shape), value_range
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, hidden),
            _batchnorm1d(hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, math.prod(self.sample_shape)),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return _to_range(self.net(z), self.value_range).view(z.shape[0], *self.sample_shape)


class ConvDecoder(nn.Module):
    """Mirror of ConvEncoder: a Linear to 2*base x H/4 x W/4, then two stride-2 transposed convs."""

    def __init__(self, latent_dim: int, sample_shape, base: int, value_range) -> None:
        super().__init__()
        channels, height, width = sample_shape
        self.sample_shape, self.value_range = tuple(sample_shape), value_range
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 2 * base * (height // 4) * (width // 4)),
            nn.Unflatten(1, (2 * base, height // 4, width // 4)),
            nn.BatchNorm2d(2 * base, eps=1e-5, momentum=0.1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.ConvTranspose2d(2 * base, base, 4, stride=2, padding=1),
            nn.BatchNorm2d(base, eps=1e-5, momentum=0.1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.ConvTranspose2d(base, channels, 4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return _to_range(self.net(z), self.value_range)


class LatentDiscriminator(nn.Module):
    """Codes -> one raw logit each (the seed's Sigmoid is left to BCE-with-logits)."""

    def __init__(self, latent_dim: int, widths: tuple[int, int]) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, widths[0]),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(widths[0], widths[1]),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(widths[1], 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1)
