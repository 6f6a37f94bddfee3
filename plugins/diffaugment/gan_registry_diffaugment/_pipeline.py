"""The augmentation module: DiffAugment's transforms (ported from mit-han-lab/data-efficient-gans,
DiffAugment_pytorch.py), each applied per sample with probability p, and ADA's adjustment of p.

Every random number comes from torch's global generator of the images' device, drawn in the same order and
amount whatever p is, so a run resumed from a checkpoint (which holds the global RNG state and this module's
buffers) augments exactly as an unbroken one. Nothing here reads a tensor to the host: p is a device tensor.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _per_sample(x: Tensor) -> Tensor:
    """One uniform [0, 1) number per sample, shaped to broadcast over (N, C, H, W)."""
    return torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device)


def rand_brightness(x: Tensor, scale: float) -> Tensor:
    # DiffAugment adds U(-0.5, 0.5) to images in [-1, 1]; `scale` is the half-width of the data's range.
    return x + (_per_sample(x) - 0.5) * scale


def rand_saturation(x: Tensor) -> Tensor:
    x_mean = x.mean(dim=1, keepdim=True)
    return (x - x_mean) * (_per_sample(x) * 2) + x_mean


def rand_contrast(x: Tensor) -> Tensor:
    x_mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - x_mean) * (_per_sample(x) + 0.5) + x_mean


def rand_translation(x: Tensor, ratio: float, fill: float) -> Tensor:
    """Shift each image by up to ratio * size pixels on each axis; what is shifted in is `fill`."""
    n, _, h, w = x.shape
    shift_x, shift_y = int(h * ratio + 0.5), int(w * ratio + 0.5)
    translation_x = torch.randint(-shift_x, shift_x + 1, size=[n, 1, 1], device=x.device)
    translation_y = torch.randint(-shift_y, shift_y + 1, size=[n, 1, 1], device=x.device)
    grid_batch, grid_x, grid_y = torch.meshgrid(
        torch.arange(n, dtype=torch.long, device=x.device),
        torch.arange(h, dtype=torch.long, device=x.device),
        torch.arange(w, dtype=torch.long, device=x.device),
        indexing="ij",
    )
    # Indices past the edge land on the one-pixel border of fill around the image.
    grid_x = torch.clamp(grid_x + translation_x + 1, 0, h + 1)
    grid_y = torch.clamp(grid_y + translation_y + 1, 0, w + 1)
    x_pad = F.pad(x, [1, 1, 1, 1], value=fill)
    return x_pad.permute(0, 2, 3, 1).contiguous()[grid_batch, grid_x, grid_y].permute(0, 3, 1, 2)


def rand_cutout(x: Tensor, ratio: float, fill: float) -> Tensor:
    """Set a square of ratio * size pixels per side, centred anywhere in the image (clipped at its edges), to fill."""
    n, _, h, w = x.shape
    cutout_size = int(h * ratio + 0.5), int(w * ratio + 0.5)
    offset_x = torch.randint(0, h + (1 - cutout_size[0] % 2), size=[n, 1, 1], device=x.device)
    offset_y = torch.randint(0, w + (1 - cutout_size[1] % 2), size=[n, 1, 1], device=x.device)
    grid_batch, grid_x, grid_y = torch.meshgrid(
        torch.arange(n, dtype=torch.long, device=x.device),
        torch.arange(cutout_size[0], dtype=torch.long, device=x.device),
        torch.arange(cutout_size[1], dtype=torch.long, device=x.device),
        indexing="ij",
    )
    grid_x = torch.clamp(grid_x + offset_x - cutout_size[0] // 2, min=0, max=h - 1)
    grid_y = torch.clamp(grid_y + offset_y - cutout_size[1] // 2, min=0, max=w - 1)
    cut = torch.zeros(n, h, w, dtype=torch.bool, device=x.device)
    cut[grid_batch, grid_x, grid_y] = True
    return x.masked_fill(cut.unsqueeze(1), fill)


class DiffAugmentPipeline(nn.Module):
    """forward(x): x with each transform of the policy applied to each sample with probability p.

    Buffers (checkpointed): `p`, the probability; `sign_sum` and `count`, the sum of sign(D(real)) and the number
    of real scores observed since the last adjustment; `rt`, the last measured E[sign(D(real))].
    """

    def __init__(self, policy: Sequence[str], *, p: float, target: float | None, interval: int, speed: int,
                 translation_ratio: float, cutout_ratio: float, fill: float, brightness_scale: float,
                 follow: Any = None) -> None:
        super().__init__()
        self.follow = follow
        """The parameters object whose p, target and ratios it takes before each batch (None: fixed): the engine
        sets a schedule's current value there before every step (`-p augment.p=schedule(0.5, 0)`)."""
        self.policy = tuple(policy)
        self.target, self.interval, self.speed = target, interval, speed
        self.translation_ratio, self.cutout_ratio = translation_ratio, cutout_ratio
        self.fill, self.brightness_scale = fill, brightness_scale
        transforms: dict[str, list[Callable[[Tensor], Tensor]]] = {
            "color": [partial(rand_brightness, scale=brightness_scale), rand_saturation, rand_contrast],
            "translation": [self._translate],
            "cutout": [self._cut_out],
        }
        # Each elementary transform (brightness, saturation and contrast too) is drawn on its own, as in ADA.
        self._transforms = [t for name in self.policy for t in transforms[name]]
        self.register_buffer("p", torch.tensor(float(p)))
        self._p_taken = float(p)  # what p was last set to from `follow`: a buffer is written only when it moves
        self.register_buffer("sign_sum", torch.tensor(0.0))
        self.register_buffer("count", torch.tensor(0.0))
        self.register_buffer("rt", torch.tensor(0.0))

    def extra_repr(self) -> str:
        adaptive = f"target={self.target}, interval={self.interval}, speed={self.speed}" if self.target else "fixed p"
        return (f"policy={','.join(self.policy)}, {adaptive}, translation_ratio={self.translation_ratio}, "
                f"cutout_ratio={self.cutout_ratio}, fill={self.fill}")

    # Methods rather than partials: the ratios are read as each batch is drawn, since a schedule may move them.
    def _translate(self, x: Tensor) -> Tensor:
        return rand_translation(x, ratio=self.translation_ratio, fill=self.fill)

    def _cut_out(self, x: Tensor) -> Tensor:
        return rand_cutout(x, ratio=self.cutout_ratio, fill=self.fill)

    def take_scheduled_values(self) -> None:
        """Take p (when not adaptive: ADA moves it itself), target and the ratios from `follow`."""
        live = self.follow
        if live is None:
            return
        self.target = live.target
        self.translation_ratio, self.cutout_ratio = live.translation_ratio, live.cutout_ratio
        if self.target is None:
            p = live.start_p
            if p != self._p_taken:
                self.p.fill_(p)  # a host float written into the buffer: no device sync
                self._p_taken = p

    def forward(self, x: Tensor) -> Tensor:
        self.take_scheduled_values()
        n = x.size(0)
        p = self.p.to(x.device)
        for transform in self._transforms:
            # Drawn whatever p is: the random stream does not depend on the strength.
            apply = (torch.rand(n, device=x.device) < p).view(n, 1, 1, 1)
            x = torch.where(apply, transform(x), x)
        return x.contiguous()

    @torch.no_grad()
    def observe_real(self, scores: Tensor) -> None:
        """Count the discriminator's raw scores of an augmented real batch (detached, on the device)."""
        self.sign_sum += scores.detach().sign().sum().to(self.sign_sum)
        self.count += scores.numel()

    @torch.no_grad()
    def end_step(self, step: int) -> dict[str, Tensor]:
        """Every `interval` steps: measure r_t and, with a target, move p towards it (ADA). Returns p and r_t."""
        if step % self.interval == 0:
            observed = self.count > 0
            rt = self.sign_sum / self.count.clamp(min=1)
            self.rt.copy_(torch.where(observed, rt, self.rt))
            if self.target is not None:
                moved = (self.p + torch.sign(rt - self.target) * self.count / self.speed).clamp(0.0, 1.0)
                self.p.copy_(torch.where(observed, moved, self.p))
            self.sign_sum.zero_()
            self.count.zero_()
        # Copies: the engine adds logged values up over steps, and these buffers change in place.
        return {"augment/p": self.p.clone(), "augment/rt": self.rt.clone()}
