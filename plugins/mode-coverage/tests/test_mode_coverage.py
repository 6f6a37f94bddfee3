"""The PacGAN mode-coverage protocol on hand-made samples."""
from __future__ import annotations

import math

import pytest
import torch

from gan_registry import DataSource, IncompatibleError
from gan_registry_mode_coverage import ModeCoverageParams, build, mode_coverage, mode_histogram, reverse_kl

RING = torch.tensor([[math.cos(a), math.sin(a)] for a in (2 * math.pi * k / 8 for k in range(8))])
STD = 0.01


def ring_data(std: float = STD) -> DataSource:
    return DataSource(sample_shape=(2,), value_range=None, load=lambda: None,
                      reference={"mode_centers": RING, "mode_std": std})


def metric(**params):
    return build(ModeCoverageParams(**params))


def test_all_samples_on_one_mode():
    torch.manual_seed(0)
    samples = RING[3] + STD * 0.5 * torch.randn(500, 2)
    result = metric()(samples, ring_data())
    assert result["modes_covered"] == 1
    assert result["modes_total"] == 8
    assert result["high_quality_percent"] > 99
    assert result["reverse_kl"] == pytest.approx(math.log(8))


def test_uniform_over_modes():
    torch.manual_seed(0)
    samples = RING.repeat(250, 1) + STD * 0.5 * torch.randn(2000, 2)  # exactly 250 per mode
    result = metric()(samples, ring_data())
    assert result["modes_covered"] == 8
    assert result["high_quality_percent"] > 99
    assert result["reverse_kl"] == pytest.approx(0.0, abs=1e-9)


def test_far_points_are_not_high_quality():
    samples = torch.full((100, 2), 10.0)
    result = metric()(samples, ring_data())
    assert result["high_quality_percent"] == 0.0
    assert result["modes_covered"] == 0
    assert result["reverse_kl"] == pytest.approx(math.log(8))  # no histogram: reported as the worst value


def test_threshold_is_three_stds_from_the_nearest_mode():
    inside = RING[0] + torch.tensor([2.9 * STD, 0.0])
    outside = RING[0] + torch.tensor([3.1 * STD, 0.0])
    assert mode_histogram(torch.stack([inside, outside]), RING, STD).tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert metric()(torch.stack([inside, outside]), ring_data())["high_quality_percent"] == 50.0
    # A looser threshold is a parameter.
    assert metric(threshold=4.0)(torch.stack([inside, outside]), ring_data())["high_quality_percent"] == 100.0


def test_min_count_decides_coverage():
    samples = torch.cat([RING[0].repeat(5, 1), RING[1].repeat(2, 1)])
    assert metric()(samples, ring_data())["modes_covered"] == 2
    assert metric(min_count=3)(samples, ring_data())["modes_covered"] == 1


def test_reverse_kl_is_kl_of_the_histogram_against_uniform():
    counts = torch.tensor([2, 1, 1, 0])  # q = 1/2, 1/4, 1/4, 0 ; empty bins add nothing
    expected = 0.5 * math.log(0.5 * 4) + 2 * 0.25 * math.log(0.25 * 4)
    assert reverse_kl(counts) == pytest.approx(expected)
    assert reverse_kl(torch.tensor([3, 3, 3])) == pytest.approx(0.0)


def test_grid_layout():
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    grid = torch.cartesian_prod(axis, axis)
    samples = torch.cat([grid[:20].repeat(10, 1), torch.tensor([[1.0, 1.0]])])  # 20 modes, one point between modes
    result = mode_coverage(samples, grid, 0.05)
    assert (result["modes_covered"], result["modes_total"]) == (20, 25)
    assert result["high_quality_percent"] == pytest.approx(100 * 200 / 201)
    assert result["reverse_kl"] == pytest.approx(math.log(25 / 20))


def test_data_without_mode_centres_is_incompatible():
    digits_like = DataSource(sample_shape=(1, 32, 32), value_range=(-1.0, 1.0), load=lambda: None)
    with pytest.raises(IncompatibleError, match="mode_centers"):
        metric()(torch.zeros(4, 1, 32, 32), digits_like)


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="min_count"):
        ModeCoverageParams(min_count=0)
    with pytest.raises(ValueError, match="threshold"):
        ModeCoverageParams(threshold=0.0)
