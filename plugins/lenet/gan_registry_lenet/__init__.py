"""LeNet-5 discriminator and a stride-1 transposed-conv generator, for 32x32 images.

The pieces of the classic MNIST GAN tutorials: both fix the image side at 32 (LeNet-5's
input), so the factories check that here, without torch; the modules are in `_nets`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gan_registry import Architecture, Discriminator, Generator, IncompatibleError, hookimpl, resolve_norm

SIDE = 32
SIDES = (28, SIDE)
"""MNIST's 28 px are padded to 32 (the LeNet-5 paper's field) by the discriminator and cropped from 32 by the
generator: MNIST trains at its own size."""


def _check_widths(owner: str, widths: tuple[int, ...]) -> None:
    if any(w < 1 for w in widths):
        raise ValueError(f"{owner} must be at least 1, got {widths}")


@dataclass
class LeNetParams:
    channels: tuple[int, int] = field(default=(6, 16), metadata={"help": "output channels of the two 5x5 convs"})
    hidden: tuple[int, int] = field(default=(120, 84), metadata={"help": "widths of the two hidden linear layers"})
    # none by default: with BatchNorm after its convs (the tutorial's choice, `norm=auto`) the LeNet pair drew
    # blurred blobs, classifier FID 420 at 400 steps on digits, against 28.7 without a norm (precision 0.03 -> 0.47):
    # normalising the real and the generated batch each by its own statistics hides from this small discriminator
    # the batch-wide differences it needs to see.
    norm: Literal["auto", "batch", "instance", "layer", "none"] = field(
        default="none",
        metadata={
            "help": "norm after each conv (none: measured best for this small discriminator); auto = batch, or "
            "layer (GroupNorm(1, C)) when the objective forbids BatchNorm in the discriminator; with spectral_norm "
            "on, auto = none (SNGAN's discriminator has no norm)"
        },
    )
    spectral_norm: bool = field(
        default=False,
        metadata={"help": "spectral normalisation (Miyato et al. 2018) on every conv/linear layer of the "
                          "discriminator; power-iteration vectors are checkpointed"},
    )

    def __post_init__(self) -> None:
        _check_widths("channels", self.channels)
        _check_widths("hidden", self.hidden)


@dataclass
class ConvTParams:
    map_channels: int = field(
        default=128, metadata={"help": "channels of the 8x8 noise map a Linear layer makes from the latent vector"}
    )
    width: int = field(default=64, metadata={"help": "channels of the 16x16 map the first transposed conv makes"})

    def __post_init__(self) -> None:
        _check_widths("map_channels and width", (self.map_channels, self.width))


def _image_side(spec, piece: str) -> tuple[int, int]:
    """(channels, side) of 32x32 images, or of MNIST's 28x28 (LeNet-5 read them centred in a 32x32 field), in
    `spec`; IncompatibleError for anything else."""
    shape = tuple(spec.sample_shape)
    if len(shape) == 3 and shape[1] == shape[2] and shape[1] in SIDES:
        return shape[0], shape[1]
    if len(shape) == 3:
        raise IncompatibleError(f"{piece} needs 32x32 images; use --image-size 32 (got {shape[1]}x{shape[2]})")
    raise IncompatibleError(f"{piece} needs 32x32 images; got samples of shape {shape}, which are not images")


def build_lenet(params: LeNetParams, spec):
    from gan_registry import layers

    from ._nets import LeNetDiscriminator

    if spec.needs.discriminator_input == "latent":
        raise IncompatibleError(
            "lenet judges 32x32 images, and this objective's discriminator judges latent codes; "
            "use a discriminator for vectors, e.g. --discriminator mlp"
        )
    channels, side = _image_side(spec, "lenet")
    # With spectral norm, auto means no norm (as SNGAN): a norm layer would rescale the normalised
    # convs' outputs and undo the Lipschitz bound. An explicit norm is kept.
    norm = "none" if params.spectral_norm and params.norm == "auto" else resolve_norm(params.norm, spec)
    background = spec.value_range[0] if spec.value_range else 0.0
    discriminator = LeNetDiscriminator(channels, params.channels, params.hidden, norm, pad=(SIDE - side) // 2,
                                       pad_value=background)
    if params.spectral_norm:
        layers.spectral_norm(discriminator)
    return discriminator


def build_convt(params: ConvTParams, spec):
    from ._nets import ConvTGenerator

    channels, side = _image_side(spec, "convt")
    return ConvTGenerator(spec.latent_dim, channels, params.map_channels, params.width, spec.value_range,
                          crop=(SIDE - side) // 2)


@hookimpl
def register_architectures(register):
    register(Discriminator(name="lenet", summary="LeNet-5 discriminator for 32x32 images: 2 convs, 3 linear layers",
                           params=LeNetParams, factory=build_lenet))
    register(Generator(name="convt", summary="Two stride-2 transposed convs growing an 8x8 noise map to 32x32",
                       params=ConvTParams, factory=build_convt))
    register(Architecture(name="lenet", summary="convt generator and LeNet-5 discriminator, 32x32 images (MNIST's 28x28 padded)",
                          generator="convt", discriminator="lenet", latent_dim=64,
                          # 2,000 steps, about 2.3 CPU-minutes a thousand with gan: at 1,000 gan reads FID 9.0 on
                          # digits (1.7x the real-vs-real floor), but wgan-gp's 30 % share (300 steps) only 17.7
                          # (3.3x); with 2,000 it gets 600 steps, FID 10.6 (2.0x) in about 5 CPU-minutes.
                          suggests={"steps": 2000}))
