"""MLP GAN pieces: images are flattened, 2D points work as is.

Follows the MLP GAN of Goodfellow et al. (2014) as written in the PyTorch-GAN collection's
`gan.py` (seed: an MLP GAN on MNIST): ReLU generator with BatchNorm and a Tanh output,
LeakyReLU(0.2) discriminator, one logit out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gan_registry import Architecture, ConditionParams, Discriminator, Generator, IncompatibleError, hookimpl, resolve_norm


WIDTH = {"points": (256, 2), "images": (512, 3)}
"""(hidden, depth) where a run sets none. Points and codes: 256 x 2 (the toys' measured setting). Images: 512 x 3, as
PyTorch-GAN's gan.py widens towards the image: on digits at 2,500 steps with gan, FID 30.8 -> 11.3 (5.8x -> 2.1x
the real-vs-real floor) for 0.7 -> 1.3 CPU-minutes; 256 x 2 stays near 6x however long it trains (15,000 steps: 35.6)."""

_HIDDEN_HELP = "width of each hidden layer (default: 512 for images, 256 for points and codes)"
_DEPTH_HELP = "number of hidden layers (default: 3 for images, 2 for points and codes)"


@dataclass
class GeneratorParams:
    hidden: int | None = field(default=None, metadata={"help": _HIDDEN_HELP})
    depth: int | None = field(default=None, metadata={"help": _DEPTH_HELP})
    norm: Literal["auto", "batch", "none"] = field(
        default="auto",
        metadata={"help": "BatchNorm after each hidden layer (smoother images, as in PyTorch-GAN's gan.py); none; "
                          "auto = batch for images, none for points"},
    )


@dataclass
class DiscriminatorParams(ConditionParams):
    hidden: int | None = field(default=None, metadata={"help": _HIDDEN_HELP})
    depth: int | None = field(default=None, metadata={"help": _DEPTH_HELP})
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


def _size(params, shape: tuple) -> tuple[int, int]:
    """(hidden, depth): the ones given, else WIDTH's for these samples (images have 3 dimensions)."""
    hidden, depth = WIDTH["images" if len(shape) == 3 else "points"]
    hidden = hidden if params.hidden is None else params.hidden
    depth = depth if params.depth is None else params.depth
    if hidden < 1 or depth < 1:
        raise IncompatibleError("hidden and depth must be at least 1")
    if depth > MAX_DEPTH:
        raise IncompatibleError(f"depth must be at most {MAX_DEPTH}, got {depth}")
    return hidden, depth


def build_generator(params: GeneratorParams, spec):
    from ._nets import MLPGenerator

    hidden, depth = _size(params, tuple(spec.sample_shape))
    norm = params.norm
    if norm == "auto":
        # BatchNorm ties each sample to its batch: it smooths images, but smears 2-D points
        # between the modes of a mixture (grid: 19/25 modes, 26 % high quality, against 25/25, 86 %).
        norm = "batch" if len(spec.sample_shape) == 3 else "none"
    return MLPGenerator(spec.latent_dim, spec.sample_shape, hidden, depth, spec.value_range, norm,
                        spec.num_classes)


def build_discriminator(params: DiscriminatorParams, spec):
    from gan_registry import layers

    from ._nets import MLPDiscriminator

    norm = resolve_norm(params.norm, spec, usual="none", per_sample="none")
    in_shape = (spec.latent_dim,) if spec.needs.discriminator_input == "latent" else spec.sample_shape
    hidden, depth = _size(params, tuple(in_shape))
    discriminator = MLPDiscriminator(in_shape, hidden, depth, norm, spec.num_classes,
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
    # 5,000 steps: cheap ones (about 3 CPU-minutes on digits with gan). gan gains little past 2,500 (FID 11.3 -> 11.2,
    # precision/recall 0.62/0.72 -> 0.71/0.78), but the critic objectives take a share of it: wgan-gp's 30 % (1,500
    # steps) reaches 2.5x the floor, where the engine's 100 epochs gave it 200 steps and FID 137.
    register(Architecture(name="mlp", summary="MLP generator and discriminator, for any sample shape",
                          generator="mlp", discriminator="mlp", latent_dim=64, suggests={"steps": 5000}))
