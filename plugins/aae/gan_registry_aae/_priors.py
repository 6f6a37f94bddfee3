"""The priors the latent discriminator matches codes to, and that `gan sample` decodes."""
from __future__ import annotations

import math

import torch

from gan_registry import IncompatibleError


def _draw_device(device, generator: torch.Generator | None):
    # A torch.Generator only draws on its own device: draw there, then move the result.
    return generator.device if generator is not None else device


def normal(n: int, latent_dim: int, device, generator: torch.Generator | None = None) -> torch.Tensor:
    on = _draw_device(device, generator)
    return torch.randn(n, latent_dim, device=on, generator=generator).to(device)


def mixture_means(components: int, radius: float) -> torch.Tensor:
    """(components, 2) means evenly spaced on a circle, the layout of the AAE paper's figure."""
    angles = 2 * math.pi * torch.arange(components, dtype=torch.float32) / components
    return radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)


def mixture(
    n: int,
    latent_dim: int,
    device,
    generator: torch.Generator | None = None,
    *,
    components: int,
    radius: float,
    std: float,
) -> torch.Tensor:
    """Equal-weight mixture of isotropic 2D Gaussians.

    It is defined in 2D only (the paper's figure): rather than invent a higher-dimensional
    analogue whose geometry nobody asked for, other latent sizes are refused.
    """
    if latent_dim != 2:
        raise IncompatibleError(
            f"prior=mixture is a Gaussian mixture in 2D, and this run's codes have {latent_dim} dimensions; "
            "run with --latent-dim 2 (or -p objective.prior=normal)"
        )
    on = _draw_device(device, generator)
    which = torch.randint(components, (n,), device=on, generator=generator)
    noise = torch.randn(n, 2, device=on, generator=generator)
    return (mixture_means(components, radius).to(on)[which] + std * noise).to(device)
