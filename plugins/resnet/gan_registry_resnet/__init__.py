"""SNGAN's ResNet pieces (Miyato et al. 2018, the CIFAR-10 networks) for square images of 32 or 64 px, and their
class-conditional form (Miyato & Koyama 2018): conditional BatchNorm in the generator, a projection (or an ACGAN
classifier) in the discriminator.

Shapes and parameters are checked here, without torch; the modules are in `_nets`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from gan_registry import Architecture, ConditionParams, Discriminator, Generator, IncompatibleError, hookimpl

SIZES = (32, 64)
"""Image sides: 4x4 doubled by 3 up-blocks (the paper's CIFAR-10 generator) or by 4."""
CHANNELS = (1, 3)


def _check_width(width: int) -> None:
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")


@dataclass
class GeneratorParams:
    width: int = field(
        default=32,
        metadata={"help": "channels of every residual block (32: a digits run takes minutes on a CPU); the paper's CIFAR-10 configuration is 256"},
    )

    def __post_init__(self) -> None:
        _check_width(self.width)


@dataclass
class DiscriminatorParams(ConditionParams):
    width: int = field(
        default=32,
        metadata={"help": "channels of every residual block (32: a digits run takes minutes on a CPU); the paper's CIFAR-10 configuration is 128"},
    )
    spectral_norm: bool = field(
        default=True,
        metadata={"help": "spectral norm on every conv/linear/embedding, as in SNGAN; power-iteration vectors "
                          "are checkpointed"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_width(self.width)


def image_shape(spec) -> tuple[int, int]:
    """(channels, side) of the square images in `spec`, or IncompatibleError naming the shapes that work."""
    shape = tuple(spec.sample_shape)
    if len(shape) == 3 and shape[1] == shape[2] and shape[1] in SIZES and shape[0] in CHANNELS:
        return shape[0], shape[1]
    wanted = "resnet needs square images of 32 or 64 px with 1 or 3 channels"
    if len(shape) != 3:
        got = f"samples of shape {shape}, which are not images"
    elif shape[1] != shape[2] or shape[1] not in SIZES:
        got = f"{shape[1]}x{shape[2]} images"
        if shape[1] == shape[2]:  # a square of the wrong size: point at the nearest sizes that work
            below = [s for s in SIZES if s < shape[1]]
            above = [s for s in SIZES if s > shape[1]]
            got += f" (use --image-size {' or '.join(str(s) for s in below[-1:] + above[:1])})"
    else:
        got = f"images with {shape[0]} channels"
    raise IncompatibleError(f"{wanted}; got {got}")


def build_generator(params: GeneratorParams, spec):
    from ._nets import ResNetGenerator

    channels, side = image_shape(spec)
    return ResNetGenerator(spec.latent_dim, channels, side, params.width, spec.value_range, spec.num_classes)


def build_discriminator(params: DiscriminatorParams, spec):
    from gan_registry import layers

    from ._nets import ResNetDiscriminator

    if spec.needs.discriminator_input == "latent":
        raise IncompatibleError(
            "the resnet discriminator judges images, and this objective's discriminator judges latent codes; "
            "use a discriminator for vectors, e.g. --discriminator mlp"
        )
    channels, side = image_shape(spec)
    # No norm layers at all, so objectives with per-sample penalties (Needs.discriminator_batchnorm=False) fit.
    discriminator = ResNetDiscriminator(channels, side, params.width, spec.num_classes, params.conditioning,
                                        params.acgan_weight)
    if params.spectral_norm:
        layers.spectral_norm(discriminator)  # after the init; covers the projection embedding too
    return discriminator


@hookimpl
def register_architectures(register):
    register(Generator(
        name="resnet", conditional=True, params=GeneratorParams, factory=build_generator,
        summary="SNGAN ResNet generator: Linear to 4x4, upsampling residual blocks (conditional BatchNorm when "
                "conditional), Tanh"))
    register(Discriminator(
        name="resnet", conditional=True, params=DiscriminatorParams, factory=build_discriminator,
        summary="SNGAN ResNet discriminator: residual blocks, spectral norm, global sum pooling "
                "(projection or ACGAN when conditional)"))
    # latent_dim 128 as in the paper's CIFAR-10 configuration.
    register(Architecture(
        name="resnet", generator="resnet", discriminator="resnet", latent_dim=128,
        suggests={"steps": 600},  # each step costs about twice DCGAN's: the same CPU budget as its 1,000
        summary="SNGAN ResNet (Miyato et al. 2018; cGAN projection, Miyato & Koyama 2018), square images of "
                "32 or 64 px"))
