"""Adversarial autoencoder (Makhzani et al. 2015) for gan-registry.

An encoder maps data to latent codes, a decoder (the "generator" role) maps codes back, and
a discriminator on *codes* pushes the encoder's aggregated code distribution towards a prior.
Sampling the prior and decoding then generates data, so `gan sample` works as for any GAN.

This module only declares parameters and checks shapes; torch is imported by the factories
(`_nets`, `_objective`, `_priors`), so listing plugins stays fast.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from gan_registry import (
    Architecture,
    Discriminator,
    Encoder,
    Generator,
    IncompatibleError,
    Needs,
    Objective,
    hookimpl,
)

LATENT_DIM = 10  # the seed's MNIST setting is 10-dimensional codes


# -- networks -----------------------------------------------------------------------------
@dataclass
class AutoencoderParams:
    """Shared by the encoder and the decoder, so `-p arch.body=conv` switches both."""

    body: Literal["mlp", "conv"] = field(
        default="mlp",
        metadata={"help": "mlp: the seed's 512-512 MLP (any sample shape); conv: two stride-2 convs (images, side divisible by 4)"},
    )
    hidden: int = field(default=512, metadata={"help": "width of the MLP's hidden layers (body=mlp)"})
    base: int = field(default=64, metadata={"help": "channels of the first conv; the second has twice as many (body=conv)"})

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.base < 1:
            raise ValueError("hidden and base must be at least 1")


@dataclass
class LatentDiscriminatorParams:
    widths: tuple[int, int] = field(default=(512, 256), metadata={"help": "widths of the two hidden layers"})
    spectral_norm: bool = field(
        default=False,
        metadata={"help": "spectral normalisation (Miyato et al. 2018) on every conv/linear layer of the "
                          "discriminator; power-iteration vectors are checkpointed"},
    )

    def __post_init__(self) -> None:
        if min(self.widths) < 1:
            raise ValueError("widths must be at least 1")


def _check_body(params: AutoencoderParams, spec) -> None:
    """The conv body halves the image twice, so it needs (C, H, W) with H and W divisible by 4."""
    if params.body != "conv":
        return
    shape = tuple(spec.sample_shape)
    if len(shape) != 3:
        raise IncompatibleError(f"body=conv needs images (C, H, W); got samples of shape {shape} (use body=mlp)")
    if shape[1] % 4 or shape[2] % 4:
        raise IncompatibleError(f"body=conv needs image sides divisible by 4; got {shape[1]}x{shape[2]}")


def build_encoder(params: AutoencoderParams, spec):
    from . import _nets

    _check_body(params, spec)
    if params.body == "conv":
        return _nets.ConvEncoder(spec.sample_shape, spec.latent_dim, params.base)
    return _nets.MLPEncoder(spec.sample_shape, spec.latent_dim, params.hidden)


def build_decoder(params: AutoencoderParams, spec):
    from . import _nets

    _check_body(params, spec)
    if params.body == "conv":
        return _nets.ConvDecoder(spec.latent_dim, spec.sample_shape, params.base, spec.value_range)
    return _nets.MLPDecoder(spec.latent_dim, spec.sample_shape, params.hidden, spec.value_range)


def build_latent_discriminator(params: LatentDiscriminatorParams, spec):
    from . import _nets

    # It only ever sees codes of size latent_dim: an objective that feeds it samples would
    # fail on a shape mismatch deep in training, so refuse up front and say what fits.
    if spec.needs.discriminator_input != "latent":
        raise IncompatibleError(
            "the aae-latent discriminator judges latent codes, and this objective trains a discriminator "
            "on samples; use --objective aae (or a sample discriminator such as --discriminator mlp)"
        )
    discriminator = _nets.LatentDiscriminator(spec.latent_dim, params.widths)
    if params.spectral_norm:
        from gan_registry import layers

        layers.spectral_norm(discriminator)
    return discriminator


# -- objective ----------------------------------------------------------------------------
@dataclass
class AAEParams:
    adversarial_weight: float = field(
        default=0.001,
        metadata={"help": "w in (1-w)*L1(reconstruction) + w*adversarial, the encoder/decoder's loss (seed: 0.001)"},
    )
    prior: Literal["normal", "mixture"] = field(
        default="normal",
        metadata={"help": "normal: N(0, I); mixture: 2D Gaussian mixture, components on a circle (needs --latent-dim 2)"},
    )
    mixture_components: int = field(default=10, metadata={"help": "components of the mixture prior (paper: 10)"})
    mixture_radius: float = field(default=3.0, metadata={"help": "radius of the circle the mixture's means lie on"})
    mixture_std: float = field(default=0.3, metadata={"help": "standard deviation of each (isotropic) mixture component"})
    lr_autoencoder: float = field(default=2e-4, metadata={"help": "Adam learning rate of encoder + decoder"})
    lr_discriminator: float = field(default=2e-4, metadata={"help": "Adam learning rate of the latent discriminator"})
    betas: tuple[float, float] = field(default=(0.5, 0.999), metadata={"help": "Adam betas of both optimisers"})

    def __post_init__(self) -> None:
        if not 0.0 <= self.adversarial_weight <= 1.0:
            raise ValueError("adversarial_weight must be in [0, 1]")
        if self.mixture_components < 1:
            raise ValueError("mixture_components must be at least 1")
        if not (self.mixture_std > 0 and math.isfinite(self.mixture_std)):
            raise ValueError("mixture_std must be a positive number")
        if not (self.mixture_radius >= 0 and math.isfinite(self.mixture_radius)):
            raise ValueError("mixture_radius must be a number >= 0")


def build_objective(params: AAEParams):
    from ._objective import AAEObjective

    return AAEObjective(params)


@hookimpl
def register_architectures(register):
    register(Encoder(name="aae", summary="AAE encoder: 512-512 MLP (or conv), mean and log-variance, reparameterised code",
                     params=AutoencoderParams, factory=build_encoder))
    register(Generator(name="aae", summary="AAE decoder: mirrors the aae encoder, Tanh output scaled to the data",
                       params=AutoencoderParams, factory=build_decoder))
    register(Discriminator(name="aae-latent", summary="AAE latent discriminator: 512-256 MLP on codes, one logit",
                           params=LatentDiscriminatorParams, factory=build_latent_discriminator))
    register(Architecture(name="aae", summary="Adversarial autoencoder: aae encoder, aae decoder, latent discriminator",
                          generator="aae", discriminator="aae-latent", encoder="aae", latent_dim=LATENT_DIM))


@hookimpl
def register_objectives(register):
    register(Objective(name="aae", summary="Adversarial autoencoder: L1 reconstruction + matching codes to a prior",
                       params=AAEParams, factory=build_objective,
                       needs=Needs(encoder=True, discriminator_input="latent")))
