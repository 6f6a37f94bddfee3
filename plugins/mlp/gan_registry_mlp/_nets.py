from __future__ import annotations

import math

import torch
from torch import nn

from gan_registry import layers


class MLPGenerator(nn.Module):
    def __init__(self, latent_dim, sample_shape, hidden, depth, value_range, norm="batch"):
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        stack, width = [], latent_dim
        for _ in range(depth):
            stack.append(nn.Linear(width, hidden))
            if norm == "batch":
                stack.append(layers.norm("batch", hidden, maps=False))
            stack.append(nn.ReLU(inplace=True))
            width = hidden
        stack.append(nn.Linear(width, math.prod(self.sample_shape)))
        self.net = nn.Sequential(*stack)
        # Bounded data gets a Tanh scaled to its range; unbounded data (2D points) a linear output.
        self.value_range = value_range

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return layers.to_range(self.net(z), self.value_range).view(z.shape[0], *self.sample_shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, in_shape, hidden, depth, norm):
        super().__init__()
        stack, width = [nn.Flatten()], math.prod(in_shape)
        for _ in range(depth):
            stack.append(nn.Linear(width, hidden))
            if norm != "none":
                stack.append(layers.norm(norm, hidden, maps=False))
            stack.append(nn.LeakyReLU(0.2, inplace=True))
            width = hidden
        stack.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*stack)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)
