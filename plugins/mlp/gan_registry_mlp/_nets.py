from __future__ import annotations

import math

import torch
from torch import nn


class MLPGenerator(nn.Module):
    def __init__(self, latent_dim, sample_shape, hidden, depth, value_range, norm="batch"):
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        layers, width = [], latent_dim
        for _ in range(depth):
            layers.append(nn.Linear(width, hidden))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(nn.ReLU(inplace=True))
            width = hidden
        layers.append(nn.Linear(width, math.prod(self.sample_shape)))
        self.net = nn.Sequential(*layers)
        # Bounded data gets a Tanh scaled to its range; unbounded data (2D points) a linear output.
        self.value_range = value_range

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.net(z)
        if self.value_range is not None:
            lo, hi = self.value_range
            x = torch.tanh(x)
            if (lo, hi) != (-1.0, 1.0):
                x = lo + (x + 1) * (hi - lo) / 2
        return x.view(z.shape[0], *self.sample_shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, in_shape, hidden, depth, norm):
        super().__init__()
        layers, width = [nn.Flatten()], math.prod(in_shape)
        for _ in range(depth):
            layers.append(nn.Linear(width, hidden))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(hidden))
            elif norm == "layer":
                layers.append(nn.LayerNorm(hidden))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)
