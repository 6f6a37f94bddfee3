"""R3GAN's generator and discriminator modules; the factories in `__init__` resolve the stages and check shapes first.

Written from the paper (Huang et al. 2024, section 4 and appendix) and the layout of brownvc/R3GAN's
R3GAN/Networks.py at commit 19a7ddf: the same layers in the same order, the same initialisation and, at 3 channels,
the same parameter count. What differs:

- the generator's output goes through `layers.to_range` (Tanh stretched over the data's range; linear for unbounded
  data), where the official output is linear; 1 or 3 image channels, where the official has 3;
- class labels come as int64 indices through an `nn.Embedding`, where the official multiplies one-hot vectors by a
  bias-free Linear: the same function, initialisation and parameter count;
- the [1,2,1] resampling is a depthwise conv2d / conv_transpose2d with the official 4x4 kernel and zero padding
  (the official's portable reference path; its CUDA path, upfirdn2d, computes the same numbers);
- no per-stage dtype: `--precision bf16` autocasts the whole network.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gan_registry import layers

LEAK = 0.2
ACTIVATION_GAIN = math.sqrt(2 / (1 + LEAK ** 2))
"""The leaky ReLU's gain: the official BiasedActivation.Gain."""
LINEAR_LAYERS_PER_BLOCK = 3
"""1x1 expand, grouped 3x3, 1x1 project: the residual branch's depth, which its variance scaling uses."""
RESAMPLING_TAPS = (1, 2, 1)


def branch_gain(total_blocks: int) -> float:
    """The gain of a residual branch's first two convs (fix-up's rescaling, in R3GAN's form): the activation gain times
    L ** (-1 / (2m - 2)) for L residual blocks in the network and m linear layers per branch (the official
    `ActivationGain * VarianceScalingParameter ** (-1 / (2 * NumberOfLinearLayers - 2))`, L = sum(BlocksPerStage))."""
    return ACTIVATION_GAIN * total_blocks ** (-1 / (2 * LINEAR_LAYERS_PER_BLOCK - 2))


def msr_init_(weight: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """He (MSR) init as the official MSRInitializer: N(0, (gain / sqrt(fan_in))^2), fan_in = the weight's input
    channels (per group) times its kernel size; gain 0 gives zeros."""
    fan_in = weight.shape[1] * math.prod(weight.shape[2:])
    with torch.no_grad():
        return weight.normal_(0.0, gain / math.sqrt(fan_in)) if gain else weight.zero_()


def conv(c_in: int, c_out: int, kernel: int, groups: int = 1, gain: float = 1.0) -> nn.Conv2d:
    """A bias-free conv with 'same' padding, MSR-initialised (the official Convolution)."""
    layer = nn.Conv2d(c_in, c_out, kernel, padding=(kernel - 1) // 2, groups=groups, bias=False)
    msr_init_(layer.weight, gain)
    return layer


class BiasedLeakyReLU(nn.Module):
    """A learned per-channel bias, then leaky ReLU(0.2) (the official BiasedActivation; bias starts at 0)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias.to(x.dtype).view(1, -1, 1, 1), LEAK)


class ResidualBlock(nn.Module):
    """x + project(act(grouped3x3(act(expand(x))))): an inverted bottleneck without normalisation.

    expand: 1x1 to width x expansion; grouped: 3x3 in `cardinality` groups; project: 1x1 back to width. Fix-up
    init: expand and grouped get `gain` (`branch_gain`), project starts at zero, so the block is the identity at
    initialisation."""

    def __init__(self, width: int, cardinality: int, expansion: int, gain: float) -> None:
        super().__init__()
        expanded = width * expansion
        self.expand = conv(width, expanded, 1, gain=gain)
        self.act1 = BiasedLeakyReLU(expanded)
        self.grouped = conv(expanded, expanded, 3, groups=cardinality, gain=gain)
        self.act2 = BiasedLeakyReLU(expanded)
        self.project = conv(expanded, width, 1, gain=0.0)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.act2(self.grouped(self.act1(self.expand(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


def lowpass_kernel(taps: tuple[int, ...] = RESAMPLING_TAPS) -> torch.Tensor:
    """The 2D resampling kernel of the official CreateLowpassKernel (interpolative): the taps convolved with [1, 1]
    ([1,2,1] -> [1,3,3,1]), their outer product, normalised to sum 1."""
    padded = (0, *taps), (*taps, 0)
    row = torch.tensor([a + b for a, b in zip(*padded)], dtype=torch.float32)
    kernel = torch.outer(row, row)
    return kernel / kernel.sum()


class Resample(nn.Module):
    """x2 up or down with the [1,2,1] filter, per channel, zero padding (the official InterpolativeUpsampler /
    InterpolativeDownsampler): up is a stride-2 transposed conv with 4x the kernel, down a stride-2 conv; both keep
    a constant image constant away from the border."""

    def __init__(self, channels: int, up: bool) -> None:
        super().__init__()
        self.up = up
        kernel = lowpass_kernel() * (4 if up else 1)
        # (C, 1, 4, 4): one filter per channel (depthwise); not in the state dict, it is not learned
        self.register_buffer("kernel", kernel.expand(channels, 1, *kernel.shape).contiguous(), persistent=False)
        self.padding = len(RESAMPLING_TAPS) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        resample = F.conv_transpose2d if self.up else F.conv2d
        return resample(x, self.kernel.to(x.dtype), stride=2, padding=self.padding, groups=x.shape[1])


class UpsampleTransition(nn.Module):
    """Between two generator stages: a 1x1 conv where the width changes, then x2 upsampling."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.linear = conv(c_in, c_out, 1) if c_in != c_out else None
        self.resample = Resample(c_out, up=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resample(self.linear(x) if self.linear is not None else x)


class DownsampleTransition(nn.Module):
    """Between two discriminator stages: x2 downsampling, then a 1x1 conv where the width changes."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.resample = Resample(c_in, up=False)
        self.linear = conv(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resample(x)
        return self.linear(x) if self.linear is not None else x


class GenerativeBasis(nn.Module):
    """The generator's first layer: a learned 4x4 basis per channel, N(0, 1), each scaled by a bias-free linear map
    of the input code (the official GenerativeBasis)."""

    def __init__(self, c_in: int, channels: int) -> None:
        super().__init__()
        self.basis = nn.Parameter(torch.empty(channels, 4, 4).normal_(0.0, 1.0))
        self.linear = nn.Linear(c_in, channels, bias=False)
        msr_init_(self.linear.weight)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.basis.to(z.dtype)[None] * self.linear(z)[:, :, None, None]


class DiscriminativeBasis(nn.Module):
    """The discriminator's last layer: a depthwise 4x4 conv (4x4 -> 1x1, one filter per channel), then a bias-free
    linear map to the output (the official DiscriminativeBasis)."""

    def __init__(self, channels: int, c_out: int) -> None:
        super().__init__()
        self.basis = nn.Conv2d(channels, channels, 4, groups=channels, bias=False)
        msr_init_(self.basis.weight)
        self.linear = nn.Linear(channels, c_out, bias=False)
        msr_init_(self.linear.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.basis(x).flatten(1))


def _blocks(width: int, count: int, cardinality: int, expansion: int, gain: float) -> list[nn.Module]:
    return [ResidualBlock(width, cardinality, expansion, gain) for _ in range(count)]


class R3GANGenerator(nn.Module):
    """z (and the class embedding) -> generative basis (4x4) -> stage 1's blocks -> [1x1 where the width changes,
    upsample, blocks] per further stage -> 1x1 aggregation to the image channels -> the data's value range."""

    def __init__(self, latent_dim: int, channels: int, widths: tuple[int, ...], blocks: tuple[int, ...],
                 cardinality: tuple[int, ...], expansion: int, value_range: tuple[float, float] | None,
                 num_classes: int | None = None) -> None:
        super().__init__()
        self.value_range, self.num_classes = value_range, num_classes
        self.label = None
        if num_classes is not None:
            # The official conditional presets embed the class in as many dimensions as the noise and concatenate
            # it to z; a one-hot Linear with MSR init there, N(0, 1 / num_classes) rows here.
            self.label = layers.LabelConcat(num_classes, latent_dim)
            msr_init_(self.label.embed.weight.T)  # fan-in num_classes, as the one-hot Linear's
        code = latent_dim + (self.label.dim if self.label is not None else 0)
        gain = branch_gain(sum(blocks)) if sum(blocks) else 0.0
        stages = []
        for i, (width, count, groups) in enumerate(zip(widths, blocks, cardinality)):
            transition = GenerativeBasis(code, width) if i == 0 else UpsampleTransition(widths[i - 1], width)
            stages.append(nn.Sequential(transition, *_blocks(width, count, groups, expansion, gain)))
        self.stages = nn.ModuleList(stages)
        self.aggregate = conv(widths[-1], channels, 1)

    def forward(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if self.label is not None:
            if condition is None:
                raise ValueError(f"this generator is conditioned on {self.num_classes} classes: call it as "
                                 "generator(z, condition) with int64 labels of shape (N,)")
            z = self.label(z, condition)
        h = z  # an unconditional generator ignores labels
        for stage in self.stages:
            h = stage(h)
        return layers.to_range(self.aggregate(h), self.value_range)


class R3GANDiscriminator(nn.Module):
    """image -> 1x1 extraction -> [blocks, downsample, 1x1 where the width changes] per stage -> the last (4x4)
    stage's blocks -> discriminative basis -> one score, or, conditional, features projected on the class's
    embedding. `widths` etc. are given from the image side down (the generator's, reversed)."""

    def __init__(self, channels: int, widths: tuple[int, ...], blocks: tuple[int, ...], cardinality: tuple[int, ...],
                 expansion: int, num_classes: int | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        # The official conditional presets project on an embedding as wide as the 4x4 stage.
        out = 1 if num_classes is None else widths[-1]
        gain = branch_gain(sum(blocks)) if sum(blocks) else 0.0
        self.extract = conv(channels, widths[0], 1)
        stages = []
        for i, (width, count, groups) in enumerate(zip(widths, blocks, cardinality)):
            last = i == len(widths) - 1
            transition = DiscriminativeBasis(width, out) if last else DownsampleTransition(width, widths[i + 1])
            stages.append(nn.Sequential(*_blocks(width, count, groups, expansion, gain), transition))
        self.stages = nn.ModuleList(stages)
        self.embed = None
        if num_classes is not None:
            self.embed = nn.Embedding(num_classes, out)
            # the official one-hot Linear with MSR gain 1 / sqrt(embedding dim): N(0, 1 / (dim x num_classes))
            msr_init_(self.embed.weight.T, 1 / math.sqrt(out))

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        h = self.extract(x)
        for stage in self.stages:
            h = stage(h)
        if self.embed is None:
            return h.reshape(-1)  # an unconditional discriminator ignores labels
        if condition is None:
            raise ValueError(f"this discriminator is conditioned on {self.num_classes} classes: its score is the "
                             "projection of its features on the class embedding; call it as "
                             "discriminator(x, condition) with int64 labels of shape (N,)")
        return (h * self.embed(condition).to(h.dtype)).sum(dim=1)
