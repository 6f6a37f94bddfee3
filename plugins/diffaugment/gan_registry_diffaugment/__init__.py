"""DiffAugment (Zhao et al. 2020) as a gan-registry augment, with StyleGAN2-ADA's adaptive strength (Karras et al.
2020) when `target` is set.

Everything the discriminator judges, real and generated alike, goes through the same random, differentiable
transforms: the discriminator cannot memorise a small dataset, and the generator still learns through them.
This module imports no torch: the pipeline (`_pipeline`) is imported by the factory.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from gan_registry import Augment, IncompatibleError, Schedule, hookimpl

TRANSFORMS = ("color", "translation", "cutout")
"""The policy names of DiffAugment_pytorch.py; color is brightness, saturation and contrast."""


def policy_names(policy: str) -> tuple[str, ...]:
    """The names of a comma-separated policy, stripped, in the order given."""
    return tuple(name.strip() for name in policy.split(",") if name.strip())


@dataclass
class DiffAugmentParams:
    policy: str = field(
        default="color,translation,cutout",
        metadata={"help": "comma-separated transforms, applied in this order: color (brightness, saturation, "
                          "contrast), translation, cutout (DiffAugment's)"},
    )
    p: float | None = field(
        default=None,
        metadata={"help": "probability that each transform is applied to each sample; with target set, the "
                          "starting probability. None: 1 (always, as DiffAugment) without target, 0 with target "
                          "(as StyleGAN2-ADA)"},
    )
    target: float | None = field(
        default=None,
        metadata={"help": "adapt p to keep r_t = E[sign(D(real))] at this target (StyleGAN2-ADA uses 0.6); "
                          "None: p stays fixed"},
    )
    interval: int = field(
        default=4, metadata={"help": "training steps between measurements of r_t and adjustments of p (ADA's 4)"}
    )
    speed: int = field(
        default=20_000,
        metadata={"help": "real images it takes p to move from 0 to 1 (ADA uses 500000 for large datasets; 20000 "
                          "lets p move within a short run on small data, e.g. 1000 steps of 64 images)"},
    )
    translation_ratio: float = field(
        default=0.125, metadata={"help": "translation shifts each side by up to this fraction of its size"}
    )
    cutout_ratio: float = field(
        default=0.5, metadata={"help": "cutout blanks a square of this fraction of each side"}
    )

    def __post_init__(self) -> None:
        names = policy_names(self.policy)
        if not names:
            raise ValueError(f"policy names no transform; use a comma-separated subset of {', '.join(TRANSFORMS)}")
        unknown = [name for name in names if name not in TRANSFORMS]
        if unknown:
            raise ValueError(f"policy has unknown transform {unknown[0]!r} (valid: {', '.join(TRANSFORMS)})")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"policy names {repeated[0]!r} more than once")
        if self.p is not None and not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {self.p}")
        if self.target is not None and not 0.0 < self.target < 1.0:
            raise ValueError(f"target must be in (0, 1) (StyleGAN2-ADA uses 0.6), got {self.target}")
        if isinstance(self.p, Schedule) and self.target is not None:
            raise ValueError("with target set, ADA moves p itself from where p starts: schedule target instead, "
                             "or drop target to schedule p")
        if self.interval < 1:
            raise ValueError(f"interval must be at least 1, got {self.interval}")
        if self.speed < 1:
            raise ValueError(f"speed must be at least 1 image, got {self.speed}")
        for name in ("translation_ratio", "cutout_ratio"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")

    @property
    def start_p(self) -> float:
        """The probability the pipeline starts at: p, else 0 when adaptive (ADA) and 1 when fixed (DiffAugment)."""
        if self.p is not None:
            return self.p
        return 0.0 if self.target is not None else 1.0


def build(params: DiffAugmentParams, spec):
    """The augmentation module for this run's samples; refuses samples that are not images."""
    shape = tuple(spec.sample_shape)
    if len(shape) != 3:
        raise IncompatibleError(
            f"DiffAugment transforms images of shape (C, H, W), and these samples have shape {shape}; "
            "run without --augment"
        )
    if spec.needs.discriminator_input == "latent":
        raise IncompatibleError(
            "this objective's discriminator judges latent codes, not images, so there is nothing to augment; "
            "run without --augment"
        )
    from ._pipeline import DiffAugmentPipeline

    if spec.value_range is None:
        middle, half_width = 0.0, 1.0
    else:
        low, high = spec.value_range
        middle, half_width = (low + high) / 2, (high - low) / 2
    return DiffAugmentPipeline(
        policy_names(params.policy),
        p=params.start_p,
        target=params.target,
        interval=params.interval,
        speed=params.speed,
        translation_ratio=params.translation_ratio,
        cutout_ratio=params.cutout_ratio,
        fill=middle,
        brightness_scale=half_width,
        follow=params,
    )


@hookimpl
def register_augments(register):
    register(Augment(name="diffaugment",
                     summary="DiffAugment (color, translation, cutout) of what D judges; adaptive p with target (ADA)",
                     params=DiffAugmentParams, factory=build))
