from __future__ import annotations

import math

import torch
from torch import nn

from gan_registry import layers


class MLPGenerator(nn.Module):
    def __init__(self, latent_dim, sample_shape, hidden, depth, value_range, norm="batch", num_classes=None):
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        # Conditional: the label's embedding joins the noise at the input (the cGAN of Mirza & Osindero 2014).
        self.label = layers.LabelConcat(num_classes) if num_classes else None
        stack, width = [], latent_dim + (self.label.dim if self.label is not None else 0)
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

    def forward(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        x = z if self.label is None else self.label(z, condition)
        return layers.to_range(self.net(x), self.value_range).view(z.shape[0], *self.sample_shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, in_shape, hidden, depth, norm, num_classes=None, conditioning="projection", acgan_weight=1.0):
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
        self.condition = layers.ClassCondition(width, num_classes, conditioning, acgan_weight) if num_classes else None

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None):
        if self.condition is None or condition is None:
            return self.net(x).view(-1)
        features = self.net[:-1](x)
        return self.condition(features, self.net[-1](features).view(-1), condition)
