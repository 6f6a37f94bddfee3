"""LeNet-5 discriminator and a stride-1 transposed-conv generator, for 32x32 images.

The pieces of the classic MNIST GAN tutorials: both fix the image side at 32 (LeNet-5's
input), so the factories check that here, without torch; the modules are in `_nets`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gan_registry import Architecture, Discriminator, Generator, IncompatibleError, hookimpl, resolve_norm

SIDE = 32


def _check_widths(owner: str, widths: tuple[int, ...]) -> None:
    if any(w < 1 for w in widths):
        raise ValueError(f"{owner} must be at least 1, got {widths}")


@dataclass
class LeNetParams:
    channels: tuple[int, int] = field(default=(6, 16), metadata={"help": "output channels of the two 5x5 convs"})
    hidden: tuple[int, int] = field(default=(120, 84), metadata={"help": "widths of the two hidden linear layers"})
    norm: Literal["auto", "batch", "instance", "layer", "none"] = field(
        default="auto",
        metadata={
            "help": "norm after each conv; auto = batch, or layer (GroupNorm(1, C)) "
            "when the objective forbids BatchNorm in the discriminator; with spectral_norm on, auto = none "
            "(SNGAN's discriminator has no norm)"
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
        default=8, metadata={"help": "channels of the 8x8 noise map a Linear layer makes from the latent vector"}
    )
    width: int = field(default=32, metadata={"help": "channels of each hidden 5x5 transposed conv"})

    def __post_init__(self) -> None:
        _check_widths("map_channels and width", (self.map_channels, self.width))


def _require_32(spec, piece: str) -> int:
    """The channel count of 32x32 images in `spec`, or IncompatibleError."""
    shape = tuple(spec.sample_shape)
    if len(shape) == 3 and shape[1:] == (SIDE, SIDE):
        return shape[0]
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
    channels = _require_32(spec, "lenet")
    # With spectral norm, auto means no norm (as SNGAN): a norm layer would rescale the normalised
    # convs' outputs and undo the Lipschitz bound. An explicit norm is kept.
    norm = "none" if params.spectral_norm and params.norm == "auto" else resolve_norm(params.norm, spec)
    discriminator = LeNetDiscriminator(channels, params.channels, params.hidden, norm)
    if params.spectral_norm:
        layers.spectral_norm(discriminator)
    return discriminator


def build_convt(params: ConvTParams, spec):
    from ._nets import ConvTGenerator

    channels = _require_32(spec, "convt")
    return ConvTGenerator(spec.latent_dim, channels, params.map_channels, params.width, spec.value_range)


@hookimpl
def register_architectures(register):
    register(Discriminator(name="lenet", summary="LeNet-5 discriminator for 32x32 images: 2 convs, 3 linear layers",
                           params=LeNetParams, factory=build_lenet))
    register(Generator(name="convt", summary="Stride-1 5x5 transposed convs growing an 8x8 noise map to 32x32",
                       params=ConvTParams, factory=build_convt))
    register(Architecture(name="lenet", summary="convt generator and LeNet-5 discriminator, 32x32 images only",
                          generator="convt", discriminator="lenet", latent_dim=64))
