"""StyleGAN2's generator and discriminator modules (config F); the factories in `__init__` check shapes first.

Written from the paper (Karras et al. 2020) with NVlabs/stylegan2-ada-pytorch `training/networks.py` as the
reference for the layout, so that the parameters are the official ones, tensor for tensor:

- every weight is stored N(0, 1/lr_mult^2) and scaled at run time by lr_mult/sqrt(fan_in) (equalised learning rate,
  Karras et al. 2018); every bias by lr_mult. Leaky ReLU 0.2 is followed by a gain of sqrt(2);
- modulated convolutions are computed without a grouped convolution: the input is scaled by the styles, convolved
  with the shared weight and scaled by the demodulation coefficients afterwards (the official code's
  `fused_modconv=False` path, the one it trains with). It is the same function as a per-sample weight, and one
  large convolution is cheaper on a CPU than N small ones;
- resampling uses the [1, 3, 3, 1] FIR filter with plain depthwise `conv2d` / `conv_transpose2d` (no custom ops):
  upsampling is a stride-2 transposed convolution then the blur, downsampling the blur then a stride-2 convolution,
  with the official paddings, so every output has exactly twice (half) the side.

Noise inputs: random per-pixel noise while training; a fixed map per layer (a buffer, the official `noise_const`)
in eval mode, so that a seed names its samples in `gan sample`; `noise_mode` overrides either.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gan_registry import layers

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2)
W_AVG_BETA = 0.995
"""Decay of the moving average of w (the official `w_avg_beta`), the centre of the truncation trick."""
NOISE_MODES = ("random", "const", "none")


def lrelu(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    return F.leaky_relu(x, LRELU_SLOPE) * (LRELU_GAIN * gain)


def fir_kernel(taps=(1.0, 3.0, 3.0, 1.0)) -> torch.Tensor:
    """The separable low-pass filter as a (k, k) kernel that sums to 1."""
    t = torch.tensor(taps, dtype=torch.float32)
    k = torch.outer(t, t)
    return k / k.sum()


def _depthwise(kernel: torch.Tensor, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    c = x.shape[1]
    return (kernel * gain).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)


def blur(x: torch.Tensor, kernel: torch.Tensor, pad: int, gain: float = 1.0) -> torch.Tensor:
    """Depthwise FIR filtering with `pad` zeros on every side (a symmetric kernel: correlation is convolution)."""
    return F.conv2d(x, _depthwise(kernel, x, gain), padding=pad, groups=x.shape[1])


def upsample(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """2x upsampling: zeros between the samples, then the filter with gain 4 (the official `upsample2d`)."""
    return F.conv_transpose2d(x, _depthwise(kernel, x, 4.0), stride=2, padding=1, groups=x.shape[1])


def downsample(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """2x downsampling: the filter, then every second sample (the official `downsample2d`)."""
    return F.conv2d(x, _depthwise(kernel, x), stride=2, padding=1, groups=x.shape[1])


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pixel norm: each row scaled to a unit mean square."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class EqualLinear(nn.Module):
    """A fully connected layer with equalised learning rate: weight stored N(0, 1/lr_mult^2), used times
    `weight_gain` = lr_mult/sqrt(in_features); bias times lr_mult. `activation` 'lrelu' adds leaky ReLU x sqrt(2)."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, bias_init: float = 0.0,
                 lr_mult: float = 1.0, activation: str = "linear") -> None:
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.lr_mult = lr_mult
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mult)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_mult / math.sqrt(in_features)
        self.bias_gain = lr_mult

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.bias_gain if self.bias is not None else None
        x = F.linear(x, self.weight * self.weight_gain, bias)
        return lrelu(x) if self.activation == "lrelu" else x


class EqualConv2d(nn.Module):
    """A convolution with equalised learning rate (weight N(0, 1), used times 1/sqrt(in * k * k)); optional leaky
    ReLU x sqrt(2) x `gain` after the bias, and 2x downsampling (blur, then a stride-2 convolution)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True,
                 activation: str = "linear", down: bool = False) -> None:
        super().__init__()
        self.activation, self.down, self.kernel_size = activation, down, kernel_size
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        if down:
            self.register_buffer("fir", fir_kernel(), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if self.down and self.kernel_size == 1:
            x = F.conv2d(downsample(x, self.fir), w)
        elif self.down:  # blur padded so that the stride-2 k x k convolution halves the side exactly
            pad = (self.kernel_size - 1) // 2 + 1
            x = F.conv2d(blur(x, self.fir, pad), w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.kernel_size // 2)
        if self.bias is not None:
            x = x + self.bias.to(x.dtype)[None, :, None, None]
        if self.activation == "lrelu":
            return lrelu(x, gain)
        return x * gain if gain != 1 else x


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, demodulate: bool = True,
                     up: bool = False, fir: torch.Tensor | None = None) -> torch.Tensor:
    """StyleGAN2's modulated convolution of x (N, I, H, W) with weight (O, I, k, k) and per-sample styles (N, I).

    The same as convolving each sample with its own weight w'[o, i] = w[o, i] * s[i] and, when demodulating,
    dividing it by sqrt(sum_{i,k} w'[o, i, k]^2 + 1e-8): here the styles scale the input and the coefficients the
    output of one shared convolution. `up`: a 2x upsampling convolution (transposed, stride 2, then the blur).
    """
    styles = styles.to(x.dtype)
    x = x * styles[:, :, None, None]
    if up:
        x = F.conv_transpose2d(x, weight.to(x.dtype).transpose(0, 1), stride=2)  # (2H + 1) pixels a side
        x = blur(x, fir, pad=1, gain=4.0)
    else:
        x = F.conv2d(x, weight.to(x.dtype), padding=weight.shape[-1] // 2)
    if demodulate:  # (N, O): sum_{i,k} w'^2, in float32 under any autocast (fp16 would overflow at config F widths)
        with torch.autocast(x.device.type, enabled=False):
            energy = styles.float().square() @ weight.float().square().sum(dim=(2, 3)).T
        x = x * (energy + 1e-8).rsqrt().to(x.dtype)[:, :, None, None]
    return x


class SynthesisLayer(nn.Module):
    """Affine style, modulated + demodulated 3x3 convolution (optionally upsampling), noise, bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False) -> None:
        super().__init__()
        self.resolution, self.up = resolution, up
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        if up:
            self.register_buffer("fir", fir_kernel(), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w), up=self.up, fir=self.fir if self.up else None)
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength.to(x.dtype)
        elif noise_mode == "const":
            x = x + (self.noise_const * self.noise_strength).to(x.dtype)
        return lrelu(x + self.bias.to(x.dtype)[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 convolution to the image channels, without demodulation; bias, no activation."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w) * self.weight_gain, demodulate=False)
        return x + self.bias.to(x.dtype)[None, :, None, None]


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: (the learned 4x4 constant, or an upsampling layer), a layer, toRGB.

    It reads `num_conv + 1` consecutive ws; its toRGB shares its w with the next block's first layer (as the
    official layout), so the network reads 2 log2(side) - 2 ws in all."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.first = in_channels == 0
        if self.first:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True)
            self.register_buffer("fir", fir_kernel(), persistent=False)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution)
        self.torgb = ToRGB(out_channels, img_channels, w_dim)
        self.num_conv = 1 if self.first else 2

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: str) -> tuple[torch.Tensor, torch.Tensor]:
        ws = ws.unbind(dim=1)
        if self.first:
            x = self.const.unsqueeze(0).expand(ws[0].shape[0], -1, -1, -1)
            x = self.conv1(x, ws[0], noise_mode)
        else:
            x = self.conv0(x, ws[0], noise_mode)
            x = self.conv1(x, ws[1], noise_mode)
        y = self.torgb(x, ws[self.num_conv])
        img = y if img is None else upsample(img, self.fir).to(y.dtype) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> images (N, C, side, side), before the output activation."""

    def __init__(self, w_dim: int, side: int, img_channels: int, channels: dict[int, int]) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.resolutions = [2 ** i for i in range(2, int(math.log2(side)) + 1)]
        self.blocks = nn.ModuleList(
            SynthesisBlock(channels[r // 2] if r > 4 else 0, channels[r], w_dim, r, img_channels)
            for r in self.resolutions)
        self.num_ws = sum(b.num_conv for b in self.blocks) + 1

    def forward(self, ws: torch.Tensor, noise_mode: str) -> torch.Tensor:
        x = img = None
        index = 0
        for block in self.blocks:
            x, img = block(x, img, ws.narrow(1, index, block.num_conv + 1), noise_mode)
            index += block.num_conv
        return img


class MappingNetwork(nn.Module):
    """z (and a class embedding) -> w: pixel norm, `num_layers` leaky-ReLU FC layers with a learning-rate multiplier."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_mult: float, num_classes: int | None) -> None:
        super().__init__()
        self.num_classes = num_classes
        embed = w_dim if num_classes is not None else 0
        # The official code embeds a one-hot label with an FC layer (lr multiplier 1): the same parameters here.
        self.embed = EqualLinear(num_classes, embed) if num_classes is not None else None
        sizes = [z_dim + embed] + [w_dim] * num_layers
        self.layers = nn.ModuleList(EqualLinear(a, b, lr_mult=lr_mult, activation="lrelu")
                                    for a, b in zip(sizes, sizes[1:]))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        x = normalize_2nd_moment(z)
        if self.embed is not None:
            y = self.embed(F.one_hot(labels, self.num_classes).to(z.dtype))
            x = torch.cat([x, normalize_2nd_moment(y).to(x.dtype)], dim=1)
        for layer in self.layers:
            x = layer(x)
        return x


def path_lengths(images: torch.Tensor, ws: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """StyleGAN2's path lengths, differentiable: per sample, sqrt(mean over the ws of |J_w^T y|^2), with J_w the
    Jacobian of the sample's image w.r.t. one of its ws and y = `noise` (randn / sqrt(H * W))."""
    (grads,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    return grads.square().sum(dim=2).mean(dim=1).sqrt()


class StyleGAN2Generator(nn.Module):
    """z -> mapping -> w (broadcast to num_ws, style mixing while training) -> skip synthesis -> the value range.

    Besides `forward(z, condition)`: `ws(z, condition)` (the per-layer ws), `synthesize(ws)`, `truncated(z, psi,
    condition)` (the truncation trick in w) and `regularization(z, condition, step)` (lazy path-length
    regularisation, called by the engine once per generator step)."""

    def __init__(self, z_dim: int, w_dim: int, img_channels: int, side: int, value_range, num_classes: int | None,
                 *, channel_base: int, channel_max: int, mapping_layers: int, mapping_lr_mult: float,
                 style_mixing: float, pl_weight: float, pl_interval: int, pl_decay: float,
                 pl_batch_shrink: int) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.value_range, self.num_classes = z_dim, w_dim, value_range, num_classes
        self.style_mixing, self.pl_weight, self.pl_interval = style_mixing, pl_weight, pl_interval
        self.pl_decay, self.pl_batch_shrink = pl_decay, pl_batch_shrink
        channels = {r: min(channel_base // r, channel_max) for r in (2 ** i for i in range(2, int(math.log2(side)) + 1))}
        self.synthesis = SynthesisNetwork(w_dim, side, img_channels, channels)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr_mult, num_classes)
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.register_buffer("pl_mean", torch.zeros(()))

    def _labels(self, condition: torch.Tensor | None) -> torch.Tensor | None:
        if self.num_classes is None:
            return None  # an unconditional generator ignores labels
        if condition is None:
            raise ValueError(f"this generator is conditioned on {self.num_classes} classes: call it as "
                             "generator(z, condition) with int64 labels of shape (N,)")
        return condition

    def _noise_mode(self, noise_mode: str | None) -> str:
        if noise_mode is None:
            return "random" if self.training else "const"
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"unknown noise_mode {noise_mode!r} (one of {', '.join(NOISE_MODES)})")
        return noise_mode

    def ws(self, z: torch.Tensor, condition: torch.Tensor | None = None, psi: float = 1.0) -> torch.Tensor:
        """The per-layer ws (N, num_ws, w_dim) that `synthesize` reads.

        While training: the moving average `w_avg` follows w, and with probability `style_mixing` the layers from a
        random crossover index (1 to num_ws - 1, one per batch) take the w of fresh noise instead (torch's global
        random state, no host sync). `psi` != 1: w_avg + psi (w - w_avg)."""
        labels = self._labels(condition)
        w = self.mapping(z, labels)
        if self.training:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, W_AVG_BETA))
        ws = w.unsqueeze(1).expand(-1, self.num_ws, -1)
        if self.training and self.style_mixing > 0:
            cutoff = torch.randint(1, self.num_ws, (), device=z.device)
            mixing = torch.rand((), device=z.device) < self.style_mixing
            cutoff = torch.where(mixing, cutoff, torch.full_like(cutoff, self.num_ws))
            other = self.mapping(torch.randn_like(z), labels).unsqueeze(1)
            layer = torch.arange(self.num_ws, device=z.device)[None, :, None]
            ws = torch.where(layer < cutoff, ws, other.to(ws.dtype))
        if psi != 1:
            ws = self.w_avg.to(ws.dtype).lerp(ws, psi)
        return ws

    def synthesize(self, ws: torch.Tensor, noise_mode: str | None = None) -> torch.Tensor:
        """Images in the data's value range from per-layer ws (N, num_ws, w_dim)."""
        return layers.to_range(self.synthesis(ws, self._noise_mode(noise_mode)), self.value_range)

    def forward(self, z: torch.Tensor, condition: torch.Tensor | None = None, *,
                noise_mode: str | None = None) -> torch.Tensor:
        return self.synthesize(self.ws(z, condition), noise_mode)

    def truncated(self, z: torch.Tensor, psi: float, condition: torch.Tensor | None = None, *,
                  noise_mode: str | None = None) -> torch.Tensor:
        """Samples of the truncation trick in w space: w = w_avg + psi (w - w_avg) (psi 1: none; 0: the average
        w's image for every z). Neither mixes styles nor moves w_avg, even in train mode."""
        w = self.mapping(z, self._labels(condition))
        ws = w.unsqueeze(1).expand(-1, self.num_ws, -1)
        if psi != 1:
            ws = self.w_avg.to(ws.dtype).lerp(ws, psi)
        return self.synthesize(ws, noise_mode)

    def regularization(self, z: torch.Tensor, condition: torch.Tensor | None,
                       step: int) -> dict[str, torch.Tensor] | None:
        """Lazy path-length regularisation (StyleGAN2): every `pl_interval` steps, on the first N // pl_batch_shrink
        latents, {"path_length": mean((lengths - pl_mean)^2) * pl_weight * pl_interval}; None on other steps or with
        pl_weight 0. `pl_mean` (a buffer, so checkpointed) moves towards the batch's mean length by `pl_decay`."""
        if self.pl_weight == 0 or step % self.pl_interval != 0:
            return None
        n = max(1, z.shape[0] // self.pl_batch_shrink)
        ws = self.ws(z[:n], None if condition is None else condition[:n])
        images = self.synthesize(ws)
        noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
        lengths = path_lengths(images, ws, noise)
        pl_mean = self.pl_mean.lerp(lengths.mean().to(self.pl_mean.dtype), self.pl_decay)
        with torch.no_grad():
            self.pl_mean.copy_(pl_mean.detach())
        penalty = (lengths - pl_mean).square().mean()
        return {"path_length": penalty * (self.pl_weight * self.pl_interval)}


class MinibatchStd(nn.Module):
    """Appends the standard deviation of the features over groups of samples as `num_channels` new maps (ProGAN).

    The group size is gcd(group_size, N), so that any batch splits into whole groups (a batch of 6 in groups of 2);
    samples i, i + N/G, ... form a group, as in the official code."""

    def __init__(self, group_size: int, num_channels: int) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = math.gcd(self.group_size, n)
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over the group
        y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # (N/G, F): the mean stddev over channels and pixels
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y.to(x.dtype)], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual block: (fromRGB at the top resolution), 3x3 conv, 3x3 conv with 2x down; plus a 1x1 down-skip;
    both branches scaled by sqrt(1/2)."""

    def __init__(self, in_channels: int, out_channels: int, img_channels: int, first: bool) -> None:
        super().__init__()
        self.fromrgb = EqualConv2d(img_channels, in_channels, 1, activation="lrelu") if first else None
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, activation="lrelu")
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, activation="lrelu", down=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fromrgb is not None:
            x = self.fromrgb(x)
        y = self.skip(x, gain=math.sqrt(0.5))
        return y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))


class StyleGAN2Discriminator(nn.Module):
    """Residual discriminator: blocks from the image side down to 4x4, minibatch stddev, 3x3 conv, FC, FC to one
    score; a class projection or ACGAN classifier on the last features where conditional."""

    def __init__(self, img_channels: int, side: int, num_classes: int | None = None, *, channel_base: int,
                 channel_max: int, mbstd_group_size: int = 4, mbstd_channels: int = 1,
                 conditioning: str = "projection", acgan_weight: float = 1.0) -> None:
        super().__init__()
        resolutions = [2 ** i for i in range(int(math.log2(side)), 2, -1)]
        channels = {r: min(channel_base // r, channel_max) for r in resolutions + [4]}
        self.blocks = nn.Sequential(*(DiscriminatorBlock(channels[r], channels[r // 2], img_channels, r == side)
                                      for r in resolutions))
        c = channels[4]
        self.mbstd = MinibatchStd(mbstd_group_size, mbstd_channels) if mbstd_channels > 0 else None
        self.conv = EqualConv2d(c + mbstd_channels, c, 3, activation="lrelu")
        self.fc = EqualLinear(c * 4 * 4, c, activation="lrelu")
        self.out = EqualLinear(c, 1)
        self.condition = (layers.ClassCondition(c, num_classes, conditioning, acgan_weight)
                          if num_classes is not None else None)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None):
        x = self.blocks(x)
        if self.mbstd is not None:
            x = self.mbstd(x)
        features = self.fc(self.conv(x).flatten(1))
        scores = self.out(features).reshape(-1)
        if self.condition is not None and condition is not None:
            return self.condition(features, scores, condition)
        return scores
