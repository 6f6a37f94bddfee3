"""LeNet-5 discriminator (PyTorch's default init, as in the tutorials) and a transposed-conv generator (DCGAN's)."""
from __future__ import annotations

import torch
from torch import nn

from gan_registry import layers


class LeNetDiscriminator(nn.Module):
    """conv5 -> pool -> conv5 -> pool -> fc -> fc -> fc(1): 32 -> 28 -> 14 -> 10 -> 5, so 5x5 maps reach the fcs."""

    def __init__(self, channels, conv_widths, hidden, norm, pad=0, pad_value=0.0):
        super().__init__()
        self.pad, self.pad_value = pad, pad_value
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
        if self.pad:  # 28x28 MNIST centred in LeNet-5's 32x32 field, on the data's background
            x = nn.functional.pad(x, (self.pad,) * 4, value=self.pad_value)
        return self.head(self.features(x)).squeeze(1)  # (N, 1) -> (N,): a raw logit per sample


class ConvTGenerator(nn.Module):
    """Linear(latent -> map x 8 x 8), then two stride-2 4x4 transposed convs: 8 -> 16 -> 32 (the MNIST tutorials'
    generator), with DCGAN's N(0, 0.02) initialisation.

    The first version grew the map with six stride-1 unpadded 5x5 transposed convs of PyTorch's default init. It
    ignored its noise: every sample of a batch was the same picture from the first epoch on (classifier FID 552 at
    1,000 steps on digits, precision and recall 0, whatever the discriminator), and its last layer's default init
    saturated a fifth of the Tanh outputs. Two strided upsamplings keep each output pixel a function of the noise
    through few layers.
    """

    def __init__(self, latent_dim, channels, map_channels, width, value_range, crop=0):
        super().__init__()
        self.crop = crop
        self.net = nn.Sequential(
            nn.Linear(latent_dim, map_channels * 64), nn.Unflatten(1, (map_channels, 8, 8)),
            nn.BatchNorm2d(map_channels), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(map_channels, width, 4, stride=2, padding=1), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1),
        )
        layers.init_dcgan(self)
        self.value_range = value_range

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.net(z)
        if self.crop:  # 28x28 MNIST: the centre of the 32x32 field
            x = x[..., self.crop:-self.crop, self.crop:-self.crop]
        return layers.to_range(x, self.value_range)
