"""DCGAN generator and discriminator modules; the factories in `__init__` check shapes first."""
from __future__ import annotations

import torch
from torch import nn

from gan_registry import layers

MAX_MULT = 8
"""Widest stage = 8 x base, as at 64 px in the paper; larger images add stages, not width
(at 256 px an uncapped stem would have 32 x base channels and tens of millions of weights)."""


def stage_widths(side: int, base: int) -> list[tuple[int, int]]:
    """(resolution, channels) of the hidden feature maps, from 4x4 up to side/2.

    Shared by both pieces: the generator walks it upwards, the discriminator downwards,
    so a stage at the same resolution has the same width in both (as in the paper).
    """
    widths, resolution = [], 4
    while resolution < side:
        widths.append((resolution, base * min(side // (2 * resolution), MAX_MULT)))
        resolution *= 2
    return widths


def make_norm(kind: str, channels: int) -> nn.Module:
    return layers.norm(kind, channels, maps=True)


init_weights = layers.init_dcgan  # the paper's init: weights N(0, 0.02), norm scales N(1, 0.02), biases 0


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim, channels, side, base, stem, value_range, num_classes=None):
        super().__init__()
        widths = [c for _, c in stage_widths(side, base)]
        # Conditional: the label's embedding joins the noise at the input (as in conditional DCGANs).
        self.label = layers.LabelConcat(num_classes) if num_classes else None
        latent_dim += self.label.dim if self.label is not None else 0
        # Layers followed by BatchNorm have no bias: BatchNorm's shift replaces it.
        if stem == "convt":
            first = [nn.Unflatten(1, (latent_dim, 1, 1)), nn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0, bias=False)]
        else:
            first = [nn.Linear(latent_dim, widths[0] * 16, bias=False), nn.Unflatten(1, (widths[0], 4, 4))]
        stack = [*first, nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
        for c_in, c_out in zip(widths, widths[1:]):
            stack += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        stack.append(nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1))
        self.net = nn.Sequential(*stack)
        self.value_range = value_range
        init_weights(self)  # leaves the label embedding at N(0, 1): N(0, 0.02) would hide the label in the noise

    def forward(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        x = z if self.label is None else self.label(z, condition)
        return layers.to_range(self.net(x), self.value_range)


class DCGANDiscriminator(nn.Module):
    def __init__(self, channels, side, base, norm, num_classes=None, conditioning="projection", acgan_weight=1.0):
        super().__init__()
        widths = [c for _, c in reversed(stage_widths(side, base))]
        # No norm on the first layer (as in the paper): it would normalise away the input's statistics.
        stack = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        for c_in, c_out in zip(widths, widths[1:]):
            stack += [
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm == "none"),
                make_norm(norm, c_out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        stack.append(nn.Conv2d(widths[-1], 1, 4, 1, 0))  # 4x4 -> 1x1: one logit, no sigmoid
        self.net = nn.Sequential(*stack)
        init_weights(self)
        # Conditional: on the last 4x4 feature map, which the final conv scores (a linear map of it).
        self.condition = (layers.ClassCondition(widths[-1] * 16, num_classes, conditioning, acgan_weight)
                          if num_classes else None)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None):
        if self.condition is None or condition is None:
            return self.net(x).reshape(-1)
        features = self.net[:-1](x)
        return self.condition(features, self.net[-1](features).reshape(-1), condition)
