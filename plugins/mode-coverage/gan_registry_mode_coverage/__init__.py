"""Mode coverage of generated samples, measured as in PacGAN (Lin et al. 2018, section 4.1).

For data whose `DataSource.reference` gives `mode_centers` (M x D) and `mode_std`:
- a sample is *high quality* when it lies within `threshold` (3) standard deviations of its
  nearest mode centre (Euclidean distance / std, as PacGAN's code does for isotropic modes);
- a mode is *covered* when at least `min_count` (1) high-quality samples land on it;
- *reverse KL* is KL(Q || U) = sum_m q_m log(q_m M), Q the histogram of the high-quality
  samples over the modes, U the uniform distribution over the M modes. An empty bin adds
  0 (0 log 0 = 0): the reverse direction is the one that stays finite when modes are
  missed, and it reaches its maximum, log M, when every good sample is on one mode.
  With no high-quality sample at all Q is undefined; we report log M then, the value of
  the worst histogram, so averages stay finite and a failed run ranks last.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from gan_registry import IncompatibleError, Metric, hookimpl


@dataclass
class ModeCoverageParams:
    threshold: float = field(
        default=3.0, metadata={"help": "high quality: within this many mode stds of the nearest mode"}
    )
    min_count: int = field(
        default=1, metadata={"help": "a mode is covered with at least this many high-quality samples"}
    )

    def __post_init__(self) -> None:
        if not self.threshold > 0:
            raise ValueError(f"threshold must be > 0, got {self.threshold}")
        if self.min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {self.min_count}")


def mode_histogram(samples, centers, std: float, threshold: float = 3.0):
    """High-quality samples per mode, shape (M,) int64; samples (N, D), centers (M, D)."""
    import torch

    samples = samples.reshape(samples.shape[0], -1).double()
    centers = centers.reshape(centers.shape[0], -1).double()
    distance, nearest = torch.cdist(samples, centers).min(dim=1)
    good = distance < threshold * std  # strict, as PacGAN's `min_dis < dis_thre`
    return torch.bincount(nearest[good], minlength=centers.shape[0])


def reverse_kl(counts) -> float:
    """KL(Q || uniform) of a histogram of counts; log M when it is empty (see the module docstring)."""
    import math

    m = counts.numel()
    total = counts.sum()
    if total == 0:
        return math.log(m)
    q = counts.double() / total
    q = q[q > 0]  # empty bins contribute 0 log 0 = 0
    return float((q * (q * m).log()).sum())


def mode_coverage(samples, centers, std: float, threshold: float = 3.0, min_count: int = 1) -> dict:
    counts = mode_histogram(samples, centers, std, threshold)
    return {
        "modes_covered": int((counts >= min_count).sum()),
        "modes_total": int(counts.numel()),
        "high_quality_percent": 100.0 * float(counts.sum()) / samples.shape[0],
        "reverse_kl": reverse_kl(counts),
    }


def build(params: ModeCoverageParams):
    def evaluate(samples, data) -> dict:
        reference = data.reference or {}
        if "mode_centers" not in reference or "mode_std" not in reference:
            raise IncompatibleError("the dataset does not give mode centres (DataSource.reference['mode_centers'])")
        centers = reference["mode_centers"]
        if tuple(centers.shape[1:]) != tuple(samples.shape[1:]):
            raise IncompatibleError(
                f"mode centres of shape {tuple(centers.shape)} do not match samples {tuple(samples.shape)}"
            )
        return mode_coverage(samples.detach().cpu(), centers.cpu(), float(reference["mode_std"]),
                             params.threshold, params.min_count)

    return evaluate


@hookimpl
def register_metrics(register):
    register(Metric(name="mode-coverage",
                    summary="Modes covered, % high-quality samples and reverse KL (PacGAN protocol)",
                    params=ModeCoverageParams, factory=build, better="higher"))  # modes covered, its first value
