"""MLP GAN pieces: images are flattened, 2D points work as is.

Follows the MLP GAN of Goodfellow et al. (2014) as written in the PyTorch-GAN collection's
`gan.py` (seed: an MLP GAN on MNIST): ReLU generator with BatchNorm and a Tanh output,
LeakyReLU(0.2) discriminator, one logit out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gan_registry import Architecture, ConditionParams, Discriminator, Generator, IncompatibleError, hookimpl, resolve_norm


@dataclass
class GeneratorParams:
    hidden: int = field(default=256, metadata={"help": "width of each hidden layer"})
    depth: int = field(default=2, metadata={"help": "number of hidden layers"})
    norm: Literal["auto", "batch", "none"] = field(
        default="auto",
        metadata={"help": "BatchNorm after each hidden layer (smoother images, as in PyTorch-GAN's gan.py); none; "
                          "auto = batch for images, none for points"},
    )


@dataclass
class DiscriminatorParams(ConditionParams):
    hidden: int = field(default=256, metadata={"help": "width of each hidden layer"})
    depth: int = field(default=2, metadata={"help": "number of hidden layers"})
    norm: Literal["auto", "none", "batch", "layer"] = field(
        default="auto", metadata={"help": "normalisation after each hidden layer; auto = none"}
    )
    spectral_norm: bool = field(
        default=False,
        metadata={"help": "spectral normalisation (Miyato et al. 2018) on every conv/linear layer of the "
                          "discriminator; power-iteration vectors are checkpointed"},
    )


MAX_DEPTH = 100
"""Hidden layers: deeper plain MLPs do not train as GANs, and building thousands of layers takes minutes."""


def _check(params) -> None:
    if params.hidden < 1 or params.depth < 1:
        raise IncompatibleError("hidden and depth must be at least 1")
    if params.depth > MAX_DEPTH:
        raise IncompatibleError(f"depth must be at most {MAX_DEPTH}, got {params.depth}")


def build_generator(params: GeneratorParams, spec):
    from ._nets import MLPGenerator

    _check(params)
    norm = params.norm
    if norm == "auto":
        # BatchNorm ties each sample to its batch: it smooths images, but smears 2-D points
        # between the modes of a mixture (grid: 19/25 modes, 26 % high quality, against 25/25, 86 %).
        norm = "batch" if len(spec.sample_shape) == 3 else "none"
    return MLPGenerator(spec.latent_dim, spec.sample_shape, params.hidden, params.depth, spec.value_range, norm,
                        spec.num_classes)


def build_discriminator(params: DiscriminatorParams, spec):
    from gan_registry import layers

    from ._nets import MLPDiscriminator

    _check(params)
    norm = resolve_norm(params.norm, spec, usual="none", per_sample="none")
    in_shape = (spec.latent_dim,) if spec.needs.discriminator_input == "latent" else spec.sample_shape
    discriminator = MLPDiscriminator(in_shape, params.hidden, params.depth, norm, spec.num_classes,
                                     params.conditioning, params.acgan_weight)
    if params.spectral_norm:
        layers.spectral_norm(discriminator)
    return discriminator


@hookimpl
def register_architectures(register):
    register(Generator(name="mlp", summary="MLP generator: ReLU hidden layers, output shaped to the data",
                       params=GeneratorParams, factory=build_generator, conditional=True))
    register(Discriminator(name="mlp", summary="MLP discriminator: LeakyReLU(0.2) hidden layers, one logit",
                           params=DiscriminatorParams, factory=build_discriminator, conditional=True))
    register(Architecture(name="mlp", summary="MLP generator and discriminator, for any sample shape",
                          generator="mlp", discriminator="mlp", latent_dim=64))
