"""MLP GAN pieces (Goodfellow et al. 2014 style): images are flattened, 2D points work as is."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gan_registry import Architecture, Discriminator, Generator, IncompatibleError, hookimpl


@dataclass
class GeneratorParams:
    hidden: int = field(default=256, metadata={"help": "width of each hidden layer"})
    depth: int = field(default=2, metadata={"help": "number of hidden layers"})


@dataclass
class DiscriminatorParams:
    hidden: int = field(default=256, metadata={"help": "width of each hidden layer"})
    depth: int = field(default=2, metadata={"help": "number of hidden layers"})
    norm: Literal["auto", "none", "batch", "layer"] = field(
        default="auto", metadata={"help": "normalisation after each hidden layer; auto = none"}
    )


def _check(params) -> None:
    if params.hidden < 1 or params.depth < 1:
        raise IncompatibleError("hidden and depth must be at least 1")


def build_generator(params: GeneratorParams, spec):
    from ._nets import MLPGenerator

    _check(params)
    return MLPGenerator(spec.latent_dim, spec.sample_shape, params.hidden, params.depth, spec.value_range)


def build_discriminator(params: DiscriminatorParams, spec):
    from ._nets import MLPDiscriminator

    _check(params)
    if params.norm == "batch" and not spec.needs.discriminator_batchnorm:
        raise IncompatibleError(
            "norm=batch mixes samples in a batch, and this objective needs a per-sample critic; "
            "use norm=layer or none"
        )
    norm = "none" if params.norm == "auto" else params.norm
    in_shape = (spec.latent_dim,) if spec.needs.discriminator_input == "latent" else spec.sample_shape
    return MLPDiscriminator(in_shape, params.hidden, params.depth, norm)


@hookimpl
def register_architectures(register):
    register(Generator(name="mlp", summary="MLP generator: ReLU hidden layers, output shaped to the data",
                       params=GeneratorParams, factory=build_generator))
    register(Discriminator(name="mlp", summary="MLP discriminator: LeakyReLU(0.2) hidden layers, one logit",
                           params=DiscriminatorParams, factory=build_discriminator))
    register(Architecture(name="mlp", summary="MLP generator and discriminator, for any sample shape",
                          generator="mlp", discriminator="mlp", latent_dim=64))
