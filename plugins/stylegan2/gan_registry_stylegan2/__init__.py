"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"), config F: a mapping
network z -> w, a skip generator of modulated and demodulated convolutions with per-pixel noise, and a residual
discriminator with a minibatch standard deviation layer; equalised learning rate everywhere. Style mixing and
lazy path-length regularisation are parameters of the generator; the truncation trick works in w space.

Square images with a power-of-two side from 16 to 1024 px, 1 or 3 channels. The widths follow the official
`channel_base` / `channel_max` rule (channels at resolution r = min(channel_base // r, channel_max)); the
defaults are sized for a CPU, and config F is `--latent-dim 512 -p arch.channel_base=32768 -p arch.channel_max=512`.

Shapes and parameters are checked here, without torch; the modules are in `_nets`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from gan_registry import Architecture, ConditionParams, Discriminator, Generator, IncompatibleError, hookimpl

SIZES = tuple(2 ** i for i in range(4, 11))
"""Image sides: 16 to 1024 px, the 4x4 constant doubled by each synthesis block."""
CHANNELS = (1, 3)

CHANNEL_BASE = 1024
CHANNEL_MAX = 64
"""CPU widths: 64 channels at 4 to 16 px, 32 at 32 px (the paper's config F: 32768 and 512, 512 channels up to
64 px). A digits step at batch 64 then costs about a second of one core's time (docs/architectures/stylegan2.md)."""

_CHANNEL_HELP = ("channels at resolution r are min(channel_base // r, channel_max); {default}: {widths} on a "
                 "32 px digits run, cheap on a CPU; the paper's config F is {paper}")


def _check_positive(**values: int | float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")


@dataclass
class _Widths:
    channel_base: int = field(default=CHANNEL_BASE, metadata={"help": _CHANNEL_HELP.format(
        default=CHANNEL_BASE, widths="64 channels at 4-16 px and 32 at 32 px", paper=32768)})
    channel_max: int = field(default=CHANNEL_MAX, metadata={"help": (
        f"the most channels any resolution gets ({CHANNEL_MAX}); the paper's config F is 512")})

    def __post_init__(self) -> None:
        _check_positive(channel_base=self.channel_base, channel_max=self.channel_max)


@dataclass
class GeneratorParams(_Widths):
    w_dim: int | None = field(default=None, metadata={"help": (
        "size of w, the mapping network's output and width (none: the latent dim, as the paper's 512 and 512)")})
    mapping_layers: int = field(default=8, metadata={"help": (
        "FC layers of the mapping network (8 as the paper; they cost little next to the convolutions)")})
    mapping_lr_mult: float = field(default=0.01, metadata={"help": (
        "learning-rate multiplier of the mapping network (0.01 as the paper), by equalised learning rate")})
    style_mixing: float = field(default=0.9, metadata={"help": (
        "probability that a training batch switches to a second w at a random layer (0.9 as the paper; 0: off)")})
    pl_weight: float = field(default=2.0, metadata={"help": (
        "weight of the path-length penalty (2 as the paper; 0: off)")})
    pl_interval: int = field(default=4, metadata={"help": (
        "lazy regularisation: the path-length penalty every k generator steps, weighted by k (4 as the paper)")})
    pl_decay: float = field(default=0.01, metadata={"help": (
        "how fast the path lengths' running mean follows the batch's (0.01 as the paper)")})
    pl_batch_shrink: int = field(default=2, metadata={"help": (
        "the path-length penalty runs on batch // k samples (2 as the paper)")})

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive(mapping_layers=self.mapping_layers, mapping_lr_mult=self.mapping_lr_mult,
                        pl_interval=self.pl_interval, pl_batch_shrink=self.pl_batch_shrink)
        if self.w_dim is not None:
            _check_positive(w_dim=self.w_dim)
        if not 0 <= self.style_mixing <= 1:
            raise ValueError(f"style_mixing is a probability, from 0 to 1; got {self.style_mixing}")
        if not self.pl_weight >= 0:
            raise ValueError(f"pl_weight must be >= 0, got {self.pl_weight}")
        if not 0 <= self.pl_decay <= 1:
            raise ValueError(f"pl_decay must be from 0 to 1, got {self.pl_decay}")


@dataclass
class DiscriminatorParams(ConditionParams, _Widths):
    mbstd_group_size: int = field(default=4, metadata={"help": (
        "samples per group of the minibatch standard deviation layer (4 as the paper; a batch that 4 does not "
        "divide uses gcd(4, batch))")})
    mbstd_channels: int = field(default=1, metadata={"help": (
        "feature maps of the minibatch standard deviation layer (1 as the paper; 0: no such layer, every score "
        "then depends on its own sample alone)")})

    def __post_init__(self) -> None:
        ConditionParams.__post_init__(self)
        _Widths.__post_init__(self)
        _check_positive(mbstd_group_size=self.mbstd_group_size)
        if self.mbstd_channels < 0:
            raise ValueError(f"mbstd_channels must be >= 0, got {self.mbstd_channels}")


def image_shape(spec) -> tuple[int, int]:
    """(channels, side) of the square images in `spec`, or IncompatibleError naming the shapes that work."""
    shape = tuple(spec.sample_shape)
    if len(shape) == 3 and shape[1] == shape[2] and shape[1] in SIZES and shape[0] in CHANNELS:
        return shape[0], shape[1]
    wanted = "stylegan2 needs square images of 16, 32, 64, 128, 256, 512 or 1024 px with 1 or 3 channels"
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


def _check_widths(params: _Widths, side: int) -> None:
    if params.channel_base // side < 1:
        raise IncompatibleError(f"channel_base {params.channel_base} leaves no channels at {side} px "
                                f"(min(channel_base // {side}, channel_max)); use channel_base >= {side}")


def build_generator(params: GeneratorParams, spec):
    from ._nets import StyleGAN2Generator

    channels, side = image_shape(spec)
    _check_widths(params, side)
    return StyleGAN2Generator(
        spec.latent_dim, params.w_dim or spec.latent_dim, channels, side, spec.value_range, spec.num_classes,
        channel_base=params.channel_base, channel_max=params.channel_max, mapping_layers=params.mapping_layers,
        mapping_lr_mult=params.mapping_lr_mult, style_mixing=params.style_mixing, pl_weight=params.pl_weight,
        pl_interval=params.pl_interval, pl_decay=params.pl_decay, pl_batch_shrink=params.pl_batch_shrink)


def build_discriminator(params: DiscriminatorParams, spec):
    from ._nets import StyleGAN2Discriminator

    if spec.needs.discriminator_input == "latent":
        raise IncompatibleError(
            "the stylegan2 discriminator judges images, and this objective's discriminator judges latent codes; "
            "use a discriminator for vectors, e.g. --discriminator mlp"
        )
    channels, side = image_shape(spec)
    _check_widths(params, side)
    c4 = min(params.channel_base // 4, params.channel_max)
    if params.mbstd_channels and c4 % params.mbstd_channels:
        raise IncompatibleError(f"mbstd_channels {params.mbstd_channels} must divide the {c4} channels at 4x4")
    # No norm layers; the minibatch stddev layer mixes a sample's score with its group's (as in ProGAN, which
    # trained it with WGAN-GP): mbstd_channels=0 makes every score depend on its own sample alone.
    return StyleGAN2Discriminator(
        channels, side, spec.num_classes, channel_base=params.channel_base, channel_max=params.channel_max,
        mbstd_group_size=params.mbstd_group_size, mbstd_channels=params.mbstd_channels,
        conditioning=params.conditioning, acgan_weight=params.acgan_weight)


@hookimpl
def register_architectures(register):
    register(Generator(
        name="stylegan2", conditional=True, params=GeneratorParams, factory=build_generator,
        summary="StyleGAN2 generator: mapping network to w, learned 4x4 constant, modulated/demodulated convs with "
                "noise, skip toRGB outputs; style mixing, path-length regularisation, truncation in w"))
    register(Discriminator(
        name="stylegan2", conditional=True, params=DiscriminatorParams, factory=build_discriminator,
        summary="StyleGAN2 residual discriminator: fromRGB, residual down-blocks, minibatch stddev, conv, FC "
                "(projection or ACGAN when conditional)"))
    # latent_dim 128 (the paper: 512): digits and the other small datasets need no more, and w's size is the
    # latent dim's by default, so the mapping network and every layer's style affine shrink with it.
    register(Architecture(
        name="stylegan2", generator="stylegan2", discriminator="stylegan2", latent_dim=128,
        # steps: a digits step (32 px, batch 64, the default widths) measured 0.98 CPU-s on one thread with the
        # path-length step every 4th one, sampling and checkpoints included: 600 steps are about 10 CPU-minutes.
        # lr_scale 10: equalised learning rate stores weights N(0, 1), so Adam's steps are ~50 times smaller relative
        # to them than to DCGAN's N(0, 0.02) weights; the paper's rate is 0.002, 10x the objectives' usual 0.0002
        # (at 0.0002 a 600-step digits run drew no digits yet; at 0.002 with betas 0, 0.99 it drew digits).
        # betas (0, 0.99): the paper's Adam; with an objective's (0.5, 0.999) the same run drew one blurred shape.
        # R1: StyleGAN2's regulariser of the non-saturating loss, lazily every 16 steps as the paper, gamma by
        # StyleGAN2-ADA's rule for small data, 0.0002 * side^2 / batch (0.0032 at 32 px, batch 64).
        suggests={"steps": 600, "lr_scale": 10, "objective.betas": "0, 0.99", "objective.r1": 0.0032,
                  "objective.penalty_every": 16},
        summary="StyleGAN2 (Karras et al. 2020), config F layout at CPU widths, square images of 16 to 1024 px"))
