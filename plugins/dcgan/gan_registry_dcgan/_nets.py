"""DCGAN generator and discriminator modules; the factories in `__init__` check shapes first."""
from __future__ import annotations

import torch
from torch import nn

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
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":
        # Layer norm over (C, H, W) of each sample, with a per-channel scale and shift:
        # per-sample like LayerNorm, and independent of the feature map's size.
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


def init_weights(module: nn.Module) -> None:
    """The paper's init: weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim, channels, side, base, stem, value_range):
        super().__init__()
        widths = [c for _, c in stage_widths(side, base)]
        # Layers followed by BatchNorm have no bias: BatchNorm's shift replaces it.
        if stem == "convt":
            first = [nn.Unflatten(1, (latent_dim, 1, 1)), nn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0, bias=False)]
        else:
            first = [nn.Linear(latent_dim, widths[0] * 16, bias=False), nn.Unflatten(1, (widths[0], 4, 4))]
        layers = [*first, nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        layers.append(nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1))
        self.net = nn.Sequential(*layers)
        self.value_range = value_range
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.net(z)
        if self.value_range is None:  # unbounded data: a linear output
            return x
        lo, hi = self.value_range
        x = torch.tanh(x)
        return x if (lo, hi) == (-1.0, 1.0) else lo + (x + 1) * ((hi - lo) / 2)


class DCGANDiscriminator(nn.Module):
    def __init__(self, channels, side, base, norm):
        super().__init__()
        widths = [c for _, c in reversed(stage_widths(side, base))]
        # No norm on the first layer (as in the paper): it would normalise away the input's statistics.
        layers = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm == "none"),
                make_norm(norm, c_out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 0))  # 4x4 -> 1x1: one logit, no sigmoid
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).reshape(-1)
