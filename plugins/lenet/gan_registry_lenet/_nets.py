"""LeNet-5 discriminator and stride-1 transposed-conv generator; PyTorch's default init, as in the tutorials."""
from __future__ import annotations

import torch
from torch import nn

from gan_registry import layers


class LeNetDiscriminator(nn.Module):
    """conv5 -> pool -> conv5 -> pool -> fc -> fc -> fc(1): 32 -> 28 -> 14 -> 10 -> 5, so 5x5 maps reach the fcs."""

    def __init__(self, channels, conv_widths, hidden, norm):
        super().__init__()
        c1, c2 = conv_widths
        h1, h2 = hidden
        act = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(channels, c1, 5), layers.norm(norm, c1, maps=True), act(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), layers.norm(norm, c2, maps=True), act(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * 5 * 5, h1), act(), nn.Linear(h1, h2), act(), nn.Linear(h2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)  # (N, 1) -> (N,): a raw logit per sample


class ConvTGenerator(nn.Module):
    """Linear(latent -> map x 8 x 8), then six stride-1 5x5 transposed convs: 8 -> 12 -> ... -> 32.

    Each unpadded 5x5 transposed conv adds 4 pixels a side, so the map starts at 8x8
    (from 6x6 the stack would step past 32 to 34).
    """

    def __init__(self, latent_dim, channels, map_channels, width, value_range):
        super().__init__()
        layers = [nn.Linear(latent_dim, map_channels * 64), nn.Unflatten(1, (map_channels, 8, 8)),
                  nn.BatchNorm2d(map_channels), nn.ReLU(inplace=True)]
        c_in = map_channels
        for _ in range(5):
            layers += [nn.ConvTranspose2d(c_in, width, 5), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            c_in = width
        layers.append(nn.ConvTranspose2d(width, channels, 5))
        self.net = nn.Sequential(*layers)
        self.value_range = value_range

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return layers.to_range(self.net(z), self.value_range)
