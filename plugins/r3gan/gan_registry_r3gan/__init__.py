"""R3GAN's networks (Huang et al. 2024, "The GAN is dead; long live the GAN! A Modern GAN Baseline", config E;
brownvc/R3GAN): a modernised StyleGAN2 backbone without normalisation, tricks or style mapping.

Both networks are stages of inverted-bottleneck residual blocks (1x1 expand, grouped 3x3, 1x1 project, leaky ReLU),
joined by [1,2,1] bilinear resampling and 1x1 transitions where the width changes. The generator starts from a
learned 4x4 basis scaled by a linear map of z; the discriminator mirrors it and ends in a depthwise 4x4 basis.
Fix-up initialisation: each branch's last conv starts at zero, the others are He-initialised and scaled down with
the number of blocks, so every residual block is the identity at initialisation. Class-conditional as the official:
the generator concatenates a class embedding to z, the discriminator projects its features on a class embedding.

`preset` gives the official presets' stage widths, blocks and groups (train.py: cifar10, ffhq-64, ffhq-256,
imagenet-32, imagenet-64); the defaults are CPU-sized. Train it with `--objective rpgan` (RpGAN + R1 + R2, the
paper's loss). Stages are resolved and shapes checked here, without torch; the modules are in `_nets`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from gan_registry import Architecture, Discriminator, Generator, IncompatibleError, ParameterError, hookimpl

MIN_SIDE, MAX_SIDE = 8, 1024
"""Square images of a power-of-two side: a 4x4 basis doubled once per stage after the first, log2(side) - 1
stages (8 px: 2 stages, 32 px: 4, 256 px: 7)."""
CHANNELS = (1, 3)

DEFAULT_WIDTH = 32
"""Channels of the stages up to 16x16 by default: CPU-sized (the official presets have 768 to 1536)."""
FULL_WIDTH_SIDE = 16
"""The largest stage side at DEFAULT_WIDTH; each larger stage halves it (down to MIN_DEFAULT_WIDTH), as the FFHQ
presets halve theirs above 32x32: most of a step's cost is in the largest stages (at 32 px, the 32x32 stage at
width 32 has three times the multiply-adds of the other three together)."""
MIN_DEFAULT_WIDTH = 8
DEFAULT_BLOCKS = 1
"""Residual blocks per stage by default (the official presets: 2)."""
DEFAULT_EXPANSION = 2
"""The inverted bottleneck's expansion factor: 2 in every official preset."""
GROUP_WIDTH = 16
"""Channels per group of the grouped 3x3 conv where cardinality is not given: the CIFAR-10 and FFHQ presets'
(1536 expanded channels in 96 groups)."""


class Preset(NamedTuple):
    side: int
    widths: tuple[int, ...]
    blocks: tuple[int, ...]
    cardinality: tuple[int, ...]
    expansion: int = 2


PRESETS = {  # brownvc/R3GAN train.py (commit 19a7ddf), generator order: from the 4x4 stage up; D mirrors them
    "cifar10": Preset(32, (768,) * 4, (2,) * 4, (96,) * 4),
    "ffhq-64": Preset(64, (768,) * 4 + (384,), (2,) * 5, (96,) * 4 + (48,)),
    "ffhq-256": Preset(256, (768,) * 4 + (384, 192, 96), (2,) * 7, (96,) * 4 + (48, 24, 12)),
    "imagenet-32": Preset(32, (1536,) * 4, (2,) * 4, (96,) * 4),
    "imagenet-64": Preset(64, (1536,) * 5, (2,) * 5, (96,) * 5),
}
PresetName = Literal["none", "cifar10", "ffhq-64", "ffhq-256", "imagenet-32", "imagenet-64"]
LATENT_DIM = 64
"""NoiseDimension of every official preset."""


class Stages(NamedTuple):
    """The resolved layout, in generator order (the 4x4 stage first)."""

    widths: tuple[int, ...]
    blocks: tuple[int, ...]
    cardinality: tuple[int, ...]
    expansion: int

    def mirrored(self) -> Stages:
        """The discriminator's layout: the image-side stage first (train.py reverses each list)."""
        return Stages(self.widths[::-1], self.blocks[::-1], self.cardinality[::-1], self.expansion)


def default_widths(side: int) -> tuple[int, ...]:
    """The CPU-sized widths for `side` px, from the 4x4 stage up: DEFAULT_WIDTH up to 16x16, then halved per stage
    (32 px: 32,32,32,16; 64 px: 32,32,32,16,8)."""
    sides = [4 * 2 ** i for i in range(stage_count(side))]
    return tuple(max(MIN_DEFAULT_WIDTH, DEFAULT_WIDTH * FULL_WIDTH_SIDE // max(s, FULL_WIDTH_SIDE)) for s in sides)


def default_cardinality(expanded: int) -> int:
    """The most groups of at least GROUP_WIDTH channels that divide `expanded` (1 below GROUP_WIDTH channels)."""
    for groups in range(expanded // GROUP_WIDTH, 1, -1):
        if expanded % groups == 0:
            return groups
    return 1


def _positive(name: str, values: tuple[int, ...] | None, least: int = 1) -> None:
    if values is not None and (not values or any(v < least for v in values)):
        raise ValueError(f"{name} must be {'positive' if least else 'non-negative'} integers, one per stage, got "
                         f"{','.join(map(str, values)) or 'nothing'}")


_STAGES_HELP = ("one per stage, from the 4x4 stage up to the image side (comma-separated; the discriminator mirrors "
                "them)")


@dataclass
class R3GANParams:
    preset: PresetName = field(default="none", metadata={"help": (
        "the official presets' widths, blocks and groups (brownvc/R3GAN train.py), each for its image side: "
        "cifar10 and imagenet-32 (32 px), ffhq-64 and imagenet-64 (64 px), ffhq-256; widths, blocks, cardinality "
        "and expansion given beside it override it; none: the CPU-sized defaults")})
    widths: tuple[int, ...] | None = field(default=None, metadata={"help": (
        f"channels of each stage, {_STAGES_HELP}; none: the preset's, else {DEFAULT_WIDTH} up to 16x16, halved at "
        "each larger stage (32 px: 32,32,32,16)")})
    blocks: tuple[int, ...] | None = field(default=None, metadata={"help": (
        f"residual blocks of each stage, {_STAGES_HELP}; none: the preset's (2), else {DEFAULT_BLOCKS} per stage")})
    cardinality: tuple[int, ...] | None = field(default=None, metadata={"help": (
        f"groups of each stage's grouped 3x3 conv, {_STAGES_HELP}; each must divide width x expansion; none: the "
        f"preset's, else the most groups of at least {GROUP_WIDTH} channels")})
    expansion: int | None = field(default=None, metadata={"help": (
        f"the inverted bottleneck's expansion factor; none: {DEFAULT_EXPANSION}, as in every official preset")})

    def __post_init__(self) -> None:
        _positive("widths", self.widths)
        _positive("blocks", self.blocks, least=0)
        _positive("cardinality", self.cardinality)
        if self.expansion is not None and self.expansion < 1:
            raise ValueError(f"expansion must be at least 1, got {self.expansion}")
        given = {name: len(v) for name in ("widths", "blocks", "cardinality")
                 if (v := getattr(self, name)) is not None}
        if len(set(given.values())) > 1:
            counts = ", ".join(f"{name} {n}" for name, n in given.items())
            raise ValueError(f"widths, blocks and cardinality need one entry per stage each; got {counts}")


@dataclass
class GeneratorParams(R3GANParams):
    pass


@dataclass
class DiscriminatorParams(R3GANParams):
    pass


def stage_count(side: int) -> int:
    return int(math.log2(side)) - 1


def image_shape(spec) -> tuple[int, int]:
    """(channels, side) of the square images in `spec`, or IncompatibleError naming the shapes that work."""
    shape = tuple(spec.sample_shape)
    sizes = [2 ** k for k in range(int(math.log2(MIN_SIDE)), int(math.log2(MAX_SIDE)) + 1)]
    if len(shape) == 3 and shape[1] == shape[2] and shape[1] in sizes and shape[0] in CHANNELS:
        return shape[0], shape[1]
    wanted = (f"r3gan needs square images whose side is a power of two from {MIN_SIDE} to {MAX_SIDE} px, "
              "with 1 or 3 channels")
    if len(shape) != 3:
        got = f"samples of shape {shape}, which are not images"
    elif shape[1] != shape[2] or shape[1] not in sizes:
        got = f"{shape[1]}x{shape[2]} images"
        if shape[1] == shape[2]:  # a square of the wrong size: point at the nearest sizes that work
            below = [s for s in sizes if s < shape[1]]
            above = [s for s in sizes if s > shape[1]]
            got += f" (use --image-size {' or '.join(str(s) for s in below[-1:] + above[:1])})"
    else:
        got = f"images with {shape[0]} channels"
    raise IncompatibleError(f"{wanted}; got {got}")


def resolve_stages(params: R3GANParams, side: int) -> Stages:
    """The stage layout for `side` px (generator order): the given lists, else the preset's, else the defaults.

    IncompatibleError where a preset or a list does not fit the image side; ParameterError where a cardinality does
    not divide its stage's expanded width."""
    n = stage_count(side)
    preset = PRESETS.get(params.preset)
    if preset is not None and preset.side != side:
        raise IncompatibleError(f"preset {params.preset} is made for {preset.side}x{preset.side} images, and these "
                                f"are {side}x{side} (use --image-size {preset.side})")
    for name in ("widths", "blocks", "cardinality"):
        given = getattr(params, name)
        if given is not None and len(given) != n:
            raise IncompatibleError(
                f"{name} has {len(given)} stages, and {side}x{side} images need {n} (a 4x4 basis doubled "
                f"{n - 1} times: log2({side}) - 1 stages)")
    widths = params.widths or (preset.widths if preset else default_widths(side))
    blocks = params.blocks if params.blocks is not None else (preset.blocks if preset else (DEFAULT_BLOCKS,) * n)
    expansion = params.expansion or (preset.expansion if preset else DEFAULT_EXPANSION)
    cardinality = params.cardinality or (preset.cardinality if preset else
                                         tuple(default_cardinality(w * expansion) for w in widths))
    for stage, (width, groups) in enumerate(zip(widths, cardinality), start=1):
        if (width * expansion) % groups:
            raise ParameterError(f"cardinality {groups} does not divide stage {stage}'s {width * expansion} expanded "
                                 f"channels (width {width} x expansion {expansion}); give cardinality=... to match")
    return Stages(tuple(widths), tuple(blocks), tuple(cardinality), expansion)


def build_generator(params: GeneratorParams, spec):
    from ._nets import R3GANGenerator

    channels, side = image_shape(spec)
    stages = resolve_stages(params, side)
    return R3GANGenerator(spec.latent_dim, channels, *stages, spec.value_range, spec.num_classes)


def build_discriminator(params: DiscriminatorParams, spec):
    from ._nets import R3GANDiscriminator

    if spec.needs.discriminator_input == "latent":
        raise IncompatibleError(
            "the r3gan discriminator judges images, and this objective's discriminator judges latent codes; "
            "use a discriminator for vectors, e.g. --discriminator mlp"
        )
    channels, side = image_shape(spec)
    # No normalisation layers anywhere: each score depends on its own sample alone, as R1/R2 need.
    return R3GANDiscriminator(channels, *resolve_stages(params, side).mirrored(), spec.num_classes)


STEPS = 750
"""The default run's generator steps (see the registration)."""

RECIPE = {
    "objective.lr_generator": f"schedule(2e-4, 5e-5, cosine, {STEPS})",
    "objective.lr_discriminator": f"schedule(2e-4, 5e-5, cosine, {STEPS})",
    "objective.betas": f"0, schedule(0.9, 0.99, cosine, {STEPS})",
    "objective.r1": f"schedule(0.1, 0.01, cosine, {STEPS})",
    "objective.r2": f"schedule(0.1, 0.01, cosine, {STEPS})",
}
"""R3GAN's training recipe (train.py's schedulers, every preset): Adam's rate 2e-4 -> 5e-5 and beta2 0.9 -> 0.99
(beta1 0), gamma of R1 and R2 down tenfold, each a half cosine over the decay. The paper decays over 20 M images
of a longer run; here over the default run's steps, written out (not "the run's length") so that a run resumed to
more steps follows the same values as a straight one. gamma starts at rpgan's digits default, 0.1 (the paper's
0.05 is for CIFAR-10, 2 for FFHQ-64: it scales with the data). The objective takes what it has of these (rpgan
all; gan, hinge and lsgan their rates, betas and R1/R2, which then switch on)."""


@hookimpl
def register_architectures(register):
    register(Generator(
        name="r3gan", conditional=True, params=GeneratorParams, factory=build_generator,
        summary="R3GAN generator: 4x4 generative basis, grouped-conv residual stages with [1,2,1] upsampling, no "
                "normalisation (class embedding beside z when conditional)"))
    register(Discriminator(
        name="r3gan", conditional=True, params=DiscriminatorParams, factory=build_discriminator,
        summary="R3GAN discriminator: the generator mirrored, [1,2,1] downsampling, 4x4 discriminative basis, no "
                "normalisation (projection on a class embedding when conditional)"))
    # latent_dim 64: NoiseDimension in every official preset. Steps: a default digits run (rpgan, R1 and R2 every
    # step, batch 64, 32x32, 1 thread) measured 633 CPU-seconds for 800 steps, grids, EMA and start-up included
    # (0.77 a step, on a 2-core machine shared with other runs): 750 steps keep it within 10 CPU-minutes, the
    # budget of the built-in combinations' default runs.
    register(Architecture(
        name="r3gan", generator="r3gan", discriminator="r3gan", latent_dim=LATENT_DIM,
        suggests={"steps": STEPS, **RECIPE},
        summary="R3GAN (Huang et al. 2024, config E): the modern GAN baseline's networks, square images of 8 to "
                "1024 px; presets of the paper's CIFAR-10, FFHQ and ImageNet networks"))
