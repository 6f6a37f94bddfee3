"""DCGAN pieces (Radford et al. 2015) for square images of 16 to 256 px.

Shapes and norm choices are checked here, without torch; the modules are in `_nets`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gan_registry import Architecture, ConditionParams, Discriminator, Generator, IncompatibleError, hookimpl, resolve_norm

SIZES = (16, 32, 64, 128, 256)
"""Image sides the stride-2 stacks reach exactly: 4x4 doubled 2 to 6 times."""


def _check_base(base: int) -> None:
    if base < 1:
        raise ValueError(f"base must be at least 1, got {base}")


@dataclass
class GeneratorParams:
    base: int = field(
        default=64, metadata={"help": "channels of the last hidden stage; doubled per stage towards the stem (at most 8x)"}
    )
    stem: Literal["convt", "linear"] = field(
        default="convt",
        metadata={"help": "convt: 4x4 transposed conv from 1x1 to 4x4 (DCGAN); linear: Linear to base*k x 4 x 4"},
    )

    def __post_init__(self) -> None:
        _check_base(self.base)


@dataclass
class DiscriminatorParams(ConditionParams):
    base: int = field(default=64, metadata={"help": "channels of the first conv; doubled per stage (at most 8x)"})
    norm: Literal["auto", "batch", "instance", "layer", "none"] = field(
        default="auto",
        metadata={
            "help": "norm after each conv but the first; auto = batch, or layer (GroupNorm(1, C)) "
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
        super().__post_init__()
        _check_base(self.base)


def image_side(spec) -> int:
    """The side of the square images in `spec`, or IncompatibleError naming the sizes that work."""
    shape = tuple(spec.sample_shape)
    if len(shape) == 3 and shape[1] == shape[2] and shape[1] in SIZES:
        return shape[1]
    sizes = ", ".join(map(str, SIZES[:-1])) + f" or {SIZES[-1]}"
    if len(shape) == 3:
        got = f"{shape[1]}x{shape[2]} images"
        if shape[1] == shape[2]:  # a square of the wrong size: point at the nearest sizes that work
            below = [s for s in SIZES if s < shape[1]]
            above = [s for s in SIZES if s > shape[1]]
            nearest = " or ".join(str(s) for s in (below[-1:] + above[:1]))
            got += f" (use --image-size {nearest})"
    else:
        got = f"samples of shape {shape}, which are not images"
    raise IncompatibleError(f"dcgan needs square images of {sizes} px; got {got}")


def build_generator(params: GeneratorParams, spec):
    from ._nets import DCGANGenerator

    side = image_side(spec)
    return DCGANGenerator(spec.latent_dim, spec.sample_shape[0], side, params.base, params.stem, spec.value_range,
                          spec.num_classes)


def build_discriminator(params: DiscriminatorParams, spec):
    from gan_registry import layers

    from ._nets import DCGANDiscriminator

    if spec.needs.discriminator_input == "latent":
        raise IncompatibleError(
            "the dcgan discriminator judges images, and this objective's discriminator judges latent codes; "
            "use a discriminator for vectors, e.g. --discriminator mlp"
        )
    side = image_side(spec)
    # With spectral norm, auto means no norm, as in SNGAN's discriminator: a norm layer after a
    # normalised conv would rescale its output and undo the Lipschitz bound. An explicit norm is kept.
    norm = "none" if params.spectral_norm and params.norm == "auto" else resolve_norm(params.norm, spec)
    discriminator = DCGANDiscriminator(spec.sample_shape[0], side, params.base, norm, spec.num_classes,
                                       params.conditioning, params.acgan_weight)  # DCGAN init inside
    if params.spectral_norm:
        layers.spectral_norm(discriminator)  # after the init: it reparametrises the initialised weights
    return discriminator


@hookimpl
def register_architectures(register):
    register(Generator(name="dcgan", summary="DCGAN generator: stride-2 transposed convs, BatchNorm+ReLU, Tanh",
                       params=GeneratorParams, factory=build_generator, conditional=True))
    register(Discriminator(name="dcgan", summary="DCGAN discriminator: stride-2 convs, LeakyReLU(0.2), one logit",
                           params=DiscriminatorParams, factory=build_discriminator, conditional=True))
    # latent_dim 100 as in the paper and the PyTorch DCGAN tutorial. 1,000 steps: a digits run of the non-saturating
    # loss reaches ~3x the real-vs-real FID in ~6 CPU-minutes on one thread; 100 epochs would take ~15.
    register(Architecture(name="dcgan", summary="DCGAN (Radford et al. 2015), square images of 16 to 256 px",
                          generator="dcgan", discriminator="dcgan", latent_dim=100, suggests={"steps": 1000}))
