"""2D Gaussian mixtures for measuring mode coverage (the PacGAN ring and grid)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gan_registry import Dataset, DataSource, hookimpl


MAX_MODES = 10_000
"""Modes of the ring, or per side of the grid: a hundred million points of the grid is past any toy."""
MAX_COUNT = 10_000_000
"""Training points: 80 MB as float32 pairs."""


@dataclass
class GaussiansParams:
    layout: Literal["ring", "grid"] = field(
        default="ring", metadata={"help": "ring: modes on a circle; grid: modes on a square lattice"}
    )
    modes: int = field(default=0, metadata={"help": "ring: number of modes (0 = 8); grid: modes per side (0 = 5)"})
    radius: float = field(default=1.0, metadata={"help": "ring radius"})
    spacing: float = field(default=2.0, metadata={"help": "grid spacing between neighbouring modes"})
    std: float = field(default=0.0, metadata={"help": "standard deviation of each mode (0 = 0.01 ring, 0.05 grid)"})
    count: int = field(default=100_000, metadata={"help": "number of training points"})
    seed: int = field(default=0, metadata={"help": "seed of the points (independent of the run's seed)"})

    def __post_init__(self) -> None:
        if self.modes < 0 or self.std < 0 or self.count < 1:
            raise ValueError("modes and std must be >= 0 and count >= 1")
        if self.modes > MAX_MODES or self.count > MAX_COUNT:  # held in memory as one tensor, with its mode centres
            raise ValueError(f"modes must be at most {MAX_MODES:,} and count at most {MAX_COUNT:,}")

    @property
    def resolved_std(self) -> float:
        return self.std or (0.01 if self.layout == "ring" else 0.05)


def mode_centers(params: GaussiansParams):
    """The mixture's means, shape (M, 2)."""
    import math

    import torch

    if params.layout == "ring":
        m = params.modes or 8
        angles = torch.arange(m, dtype=torch.float64) * (2 * math.pi / m)
        return (params.radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()
    side = params.modes or 5
    axis = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * params.spacing
    return torch.cartesian_prod(axis, axis)


def sample_points(params: GaussiansParams, count: int, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    centers = mode_centers(params)
    which = torch.randint(len(centers), (count,), generator=g)
    return centers[which] + params.resolved_std * torch.randn(count, 2, generator=g)


def build(params: GaussiansParams, context) -> DataSource:
    return DataSource(
        sample_shape=(2,),
        value_range=None,
        load=lambda: sample_points(params, params.count, params.seed),
        load_heldout=lambda: sample_points(params, 10_000, params.seed + 1),
        reference={"mode_centers": mode_centers(params), "mode_std": params.resolved_std},
    )


# Measured with benchmarks/modes.py (docs: mode coverage). PacGAN's 2-D noise; larger batches
# show the discriminator the sparse samples between modes; image learning rates (2e-4) are
# ten times too slow to converge in minutes, and holding them to the end leaves samples
# jittering around the modes, so they decay over the last 70 % of the run.
# WGAN-GP's lambda 0.1, as the paper's own 2D toy code (its lambda 10 is for images): at 10 the critic's
# penalty outweighs the distances of points two units apart, and wgan-gp found 1 of 8 ring modes and 13 of 25
# grid modes; at 0.1, 8/8 (96.7 % high-quality samples) and 25/25 (88.1 %) (docs: combination matrix).
SUGGESTS = {"latent_dim": 2, "batch_size": 256, "steps": 10_000, "lr_scale": 10, "lr_decay_start": 0.3,
            "objective.gp_weight": 0.1}


@hookimpl
def register_datasets(register):
    register(Dataset(name="gaussians", summary="2D Gaussian mixture: 8-mode ring or 25-mode grid (PacGAN toys)",
                     params=GaussiansParams, factory=build, suggests=SUGGESTS))
