"""Building blocks the built-in architectures share, for any architecture plugin to use.

Import it where networks are built (it imports torch): `from gan_registry import layers` inside a factory
or a module of networks.

Layer: contracts (docs/architecture.md).
"""
from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as parametrize

NORMS = ("batch", "instance", "layer", "none")
"""Names `norm` takes. Per-sample ones (instance, layer, none) keep each sample's score independent of its
batch, which per-sample penalties (WGAN-GP, R1) need: see `gan_registry.resolve_norm`."""


def norm(kind: str, channels: int, *, maps: bool) -> nn.Module:
    """A normalisation layer by name, for feature vectors (`maps=False`) or (C, H, W) feature maps (`maps=True`).

    "layer" on maps normalises each sample's (C, H, W) with a per-channel scale and shift (GroupNorm with
    one group), so it does not depend on the map's size.
    """
    if kind == "batch":
        # Keyword arguments on purpose: BatchNorm's second positional argument is eps, and GAN code
        # often writes BatchNorm1d(c, 0.8) meaning momentum.
        return (nn.BatchNorm2d if maps else nn.BatchNorm1d)(channels, eps=1e-5, momentum=0.1)
    if kind == "layer":
        return nn.GroupNorm(1, channels) if maps else nn.LayerNorm(channels)
    if kind == "instance":
        if not maps:
            raise ValueError("instance norm normalises feature maps; use layer for vectors")
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r} (one of {', '.join(NORMS)})")


def to_range(x: torch.Tensor, value_range: tuple[float, float] | None) -> torch.Tensor:
    """A generator's output activation: Tanh stretched over the data's range, or linear for unbounded data."""
    if value_range is None:
        return x
    lo, hi = value_range
    x = torch.tanh(x)
    if (lo, hi) != (-1.0, 1.0):
        x = lo + (x + 1) * (hi - lo) / 2
    return x


def init_dcgan(module: nn.Module, std: float = 0.02) -> None:
    """DCGAN's init (Radford et al. 2015): conv and linear weights N(0, std), norm scales N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def spectral_norm(module: nn.Module,
                  kinds: Iterable[type] = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every layer of `kinds` in `module`, in place (a projection
    discriminator's class embedding too, as in SNGAN-projection).

    Uses torch's parametrisation, whose power-iteration vectors are buffers: they are in the state dict,
    so checkpoints and resume carry them.
    """
    for m in list(module.modules()):
        if isinstance(m, tuple(kinds)) and not hasattr(m, "parametrizations"):
            parametrize(m)
    return module


CONDITIONINGS = ("projection", "acgan")
"""How a conditional discriminator takes the class: a projection of its features on the label's embedding (Miyato &
Koyama 2018), or an auxiliary classifier whose loss is added to every phase (Odena et al. 2017)."""


class LabelConcat(nn.Module):
    """A conditional generator's input: the noise with a learned embedding of the class label concatenated."""

    def __init__(self, num_classes: int, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim or num_classes
        self.embed = nn.Embedding(num_classes, self.dim)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, self.embed(labels).to(z.dtype)], dim=1)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift are rows of per-class tables (de Vries et al. 2017; SNGAN, BigGAN).

    Scales start at 1 and shifts at 0: at initialisation it is plain BatchNorm for every class."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.scale = nn.Embedding(num_classes, channels)
        self.shift = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        scale = self.scale(labels).to(x.dtype)[:, :, None, None]
        shift = self.shift(labels).to(x.dtype)[:, :, None, None]
        return self.norm(x) * scale + shift


class ClassCondition(nn.Module):
    """The class conditioning of a discriminator's last layer, on its penultimate features.

    projection: the score plus <embed(y), features> (Miyato & Koyama 2018, eq. 3);
    acgan: the score unchanged, with `weight` x the cross-entropy of a linear classifier of the features against
    the labels (Odena et al. 2017), returned beside it as `(scores, auxiliary_loss)`: the engine adds that loss to
    the phase's, so the discriminator learns to classify real and generated samples and the generator to make
    samples of their class.
    """

    def __init__(self, features: int, num_classes: int, kind: str = "projection", weight: float = 1.0) -> None:
        super().__init__()
        if kind not in CONDITIONINGS:
            raise ValueError(f"unknown conditioning {kind!r} (one of {', '.join(CONDITIONINGS)})")
        self.kind, self.weight = kind, float(weight)
        if kind == "projection":
            self.embed = nn.Embedding(num_classes, features)
            nn.init.xavier_uniform_(self.embed.weight)
        else:
            self.classify = nn.Linear(features, num_classes)

    def forward(self, features: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor) -> Any:
        features = features.flatten(start_dim=1)
        if self.kind == "projection":
            return scores + (self.embed(labels).to(features.dtype) * features).sum(dim=1)
        logits = self.classify(features).float()
        return scores, self.weight * F.cross_entropy(logits, labels)
