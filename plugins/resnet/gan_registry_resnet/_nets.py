"""SNGAN ResNet generator and discriminator modules; the factories in `__init__` check shapes first.

Layout and init follow the SNGAN code (pfnet-research/sngan_projection, chainer; mimicry's SNGAN32/48 port):
every residual conv is xavier-uniform with gain sqrt(2), every shortcut conv, the generator's stem Linear and
last conv and the discriminator's Linear with gain 1; biases start at 0 (chainer's default). Plain BatchNorms start
at scale 1, shift 0; conditional ones at class scales N(1, 0.02), shifts 0 (mimicry's); the projection embedding is
`layers.ClassCondition`'s xavier-uniform.

Each shortcut runs its 1x1 conv at the lower of its two resolutions (conv then upsample in the generator,
pool then conv in the discriminator): nearest upsampling and 2x2 average pooling commute with a 1x1 conv, so this
is the same function as the paper's order at a quarter of the cost.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gan_registry import layers

RESIDUAL_GAIN = math.sqrt(2)


def _init(module: nn.Module, gain: float = 1.0) -> nn.Module:
    nn.init.xavier_uniform_(module.weight, gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


def _conv(c_in: int, c_out: int, kernel: int, gain: float) -> nn.Conv2d:
    return _init(nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2), gain)


def _batch_norm(channels: int, num_classes: int | None) -> nn.Module:
    if num_classes is None:
        return nn.BatchNorm2d(channels)
    norm = layers.ConditionalBatchNorm2d(channels, num_classes)
    # Class scales N(1, 0.02), shifts 0 (mimicry's init) rather than all ones (chainer's): a generator whose
    # output is the same for every label at init breaks the symmetry between classes only through training, and
    # the engine checks before training that a conditional generator's sample depends on its label.
    nn.init.normal_(norm.scale.weight, 1.0, 0.02)
    return norm


def _normalise(norm: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    return norm(x) if labels is None else norm(x, labels)


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class GeneratorBlock(nn.Module):
    """BN -> ReLU -> Upsample x2 -> Conv3x3 -> BN -> ReLU -> Conv3x3, plus Upsample -> Conv1x1 (SNGAN's up-block);
    the BatchNorms are class-conditional where `num_classes` is set."""

    def __init__(self, c_in: int, c_out: int, num_classes: int | None) -> None:
        super().__init__()
        self.norm1 = _batch_norm(c_in, num_classes)
        self.conv1 = _conv(c_in, c_out, 3, RESIDUAL_GAIN)
        self.norm2 = _batch_norm(c_out, num_classes)
        self.conv2 = _conv(c_out, c_out, 3, RESIDUAL_GAIN)
        self.shortcut = _conv(c_in, c_out, 1, 1.0)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(_normalise(self.norm1, x, labels))
        h = self.conv1(_upsample(h))
        h = self.conv2(F.relu(_normalise(self.norm2, h, labels)))
        return h + _upsample(self.shortcut(x))


class ResNetGenerator(nn.Module):
    """z -> Linear -> width x 4 x 4 -> up-blocks to the image side -> BN -> ReLU -> Conv3x3 -> the value range."""

    def __init__(self, latent_dim: int, channels: int, side: int, width: int,
                 value_range: tuple[float, float] | None, num_classes: int | None = None) -> None:
        super().__init__()
        self.width, self.value_range, self.num_classes = width, value_range, num_classes
        # The class enters twice, as in BigGAN: a label embedding beside z at the stem, and the conditional
        # BatchNorms. CBN alone (SNGAN's) measured 0.11-0.28 class accuracy on digits at 500-600 steps; with the
        # stem embedding 0.94-0.985 at 1,000 (docs/conditional.md).
        self.label = layers.LabelConcat(num_classes) if num_classes is not None else None
        stem_in = latent_dim + (self.label.dim if self.label is not None else 0)
        self.stem = _init(nn.Linear(stem_in, width * 4 * 4))
        self.blocks = nn.ModuleList(GeneratorBlock(width, width, num_classes)
                                    for _ in range(int(math.log2(side // 4))))
        self.norm = _batch_norm(width, num_classes)
        self.out = _conv(width, channels, 3, 1.0)

    def forward(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes is None:
            condition = None  # an unconditional generator ignores labels
        elif condition is None:
            raise ValueError(f"this generator is conditioned on {self.num_classes} classes: call it as "
                             "generator(z, condition) with int64 labels of shape (N,)")
        if self.label is not None:
            z = self.label(z, condition)
        h = self.stem(z).view(-1, self.width, 4, 4)
        for block in self.blocks:
            h = block(h, condition)
        h = self.out(F.relu(_normalise(self.norm, h, condition)))
        return layers.to_range(h, self.value_range)


class OptimizedBlock(nn.Module):
    """The discriminator's first block: Conv3x3 -> ReLU -> Conv3x3 -> AvgPool2, plus AvgPool2 -> Conv1x1 (no ReLU
    before the first conv: it would clip the image)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = _conv(c_in, c_out, 3, RESIDUAL_GAIN)
        self.conv2 = _conv(c_out, c_out, 3, RESIDUAL_GAIN)
        self.shortcut = _conv(c_in, c_out, 1, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(x))), 2)
        return h + self.shortcut(F.avg_pool2d(x, 2))


class DiscriminatorBlock(nn.Module):
    """ReLU -> Conv3x3 -> ReLU -> Conv3x3 (-> AvgPool2), plus Conv1x1 (-> AvgPool2) where the block pools or
    changes width; an identity shortcut otherwise, as in SNGAN."""

    def __init__(self, c_in: int, c_out: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = _conv(c_in, c_out, 3, RESIDUAL_GAIN)
        self.conv2 = _conv(c_out, c_out, 3, RESIDUAL_GAIN)
        self.shortcut = _conv(c_in, c_out, 1, 1.0) if down or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x))))  # not in place: x is the shortcut's input too
        s = x
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        if self.shortcut is not None:
            s = self.shortcut(s)
        return h + s


class ResNetDiscriminator(nn.Module):
    """Optimized down-block, down-blocks to 8x8, two plain blocks (32 px: the paper's down, down, plain, plain),
    ReLU, global sum pooling, Linear to one score; a class projection or ACGAN classifier where conditional."""

    def __init__(self, channels: int, side: int, width: int, num_classes: int | None = None,
                 conditioning: str = "projection", acgan_weight: float = 1.0) -> None:
        super().__init__()
        downs = int(math.log2(side // 8)) - 1  # after the optimized block: 32 px -> 1, 64 px -> 2
        self.blocks = nn.Sequential(
            OptimizedBlock(channels, width),
            *(DiscriminatorBlock(width, width, down=True) for _ in range(downs)),
            *(DiscriminatorBlock(width, width, down=False) for _ in range(2)),
        )
        self.linear = _init(nn.Linear(width, 1))
        self.condition = (layers.ClassCondition(width, num_classes, conditioning, acgan_weight)
                          if num_classes is not None else None)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None):
        features = F.relu(self.blocks(x)).sum(dim=(2, 3))  # (N, width): SNGAN's global sum pooling
        scores = self.linear(features).reshape(-1)
        if self.condition is not None and condition is not None:
            return self.condition(features, scores, condition)
        return scores
