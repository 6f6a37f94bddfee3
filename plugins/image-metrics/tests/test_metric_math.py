"""The metrics against closed forms and limiting cases, on feature sets made here."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_registry import Features, IncompatibleError
from gan_registry_image_metrics.metrics import (
    IsParams, KidParams, NeighbourParams, density_coverage, fid, inception_score, kid, precision_recall,
)


def gaussian(n, mean, cov, seed):
    rng = np.random.default_rng(seed)
    return Features(torch.from_numpy(rng.multivariate_normal(mean, cov, size=n)).float())


def frechet(mu1, s1, mu2, s2) -> float:
    """The closed form, ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), by scipy's matrix square root."""
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def test_fid_of_two_gaussian_feature_sets_is_the_closed_form():
    d = 6
    rng = np.random.default_rng(0)
    a = rng.normal(size=(d, d))
    cov1, cov2 = a @ a.T / d + np.eye(d), np.diag(np.linspace(0.5, 2.0, d))
    mean1, mean2 = np.zeros(d), np.linspace(-1, 1, d)
    x, y = gaussian(20_000, mean1, cov1, 1), gaussian(20_000, mean2, cov2, 2)
    measured = fid(None)(x, y)["fid"]
    fx, fy = x.features.double().numpy(), y.features.double().numpy()
    on_the_samples = frechet(fx.mean(0), np.cov(fx, rowvar=False), fy.mean(0), np.cov(fy, rowvar=False))
    assert measured == pytest.approx(on_the_samples, rel=1e-6)
    assert measured == pytest.approx(frechet(mean1, cov1, mean2, cov2), rel=0.03)  # the population value


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    x = gaussian(2000, np.zeros(4), np.eye(4), 0)
    assert abs(fid(None)(x, x)["fid"]) < 1e-6
    shifted = Features(x.features + 2.0)
    assert fid(None)(shifted, x)["fid"] == pytest.approx(4 * 4.0, rel=1e-4)  # only the means differ: ||2·1||^2


def test_kid_is_about_zero_for_one_distribution_and_positive_for_a_shifted_one():
    params = KidParams(subsets=20, subset_size=500)
    x, y = gaussian(1000, np.zeros(8), np.eye(8), 0), gaussian(1000, np.zeros(8), np.eye(8), 1)
    same = kid(params)(x, y)
    apart = kid(params)(Features(x.features + 1.0), y)
    assert abs(same["kid_mean"]) < 3 * same["kid_std"] + 1e-3
    assert apart["kid_mean"] > 10 * max(same["kid_mean"], same["kid_std"], 1e-3)


def test_kid_caps_its_subsets_at_the_smaller_set():
    x, y = gaussian(50, np.zeros(3), np.eye(3), 0), gaussian(80, np.zeros(3), np.eye(3), 1)
    assert kid(KidParams(subsets=5))(x, y)["kid_subset_size"] == 50


def test_precision_and_recall_are_one_for_identical_sets_and_precision_falls_off_the_support():
    x = gaussian(600, np.zeros(5), np.eye(5), 0)
    same = precision_recall(NeighbourParams())(x, x)
    assert same == {"precision": 1.0, "recall": 1.0}
    half_away = Features(torch.cat([x.features[:300], x.features[300:] + 100.0]))
    off = precision_recall(NeighbourParams())(half_away, x)
    assert off["precision"] == pytest.approx(0.5, abs=0.02)
    assert off["recall"] < 1.0


def test_density_and_coverage_of_identical_sets():
    x = gaussian(500, np.zeros(5), np.eye(5), 0)
    values = density_coverage(NeighbourParams())(x, x)
    assert values["coverage"] == 1.0
    assert values["density"] == pytest.approx(1.0, abs=0.05)
    away = density_coverage(NeighbourParams())(Features(x.features + 100.0), x)
    assert away == {"density": 0.0, "coverage": 0.0}


def test_inception_score_counts_confident_balanced_classes():
    classes = 10
    labels = torch.arange(1000) % classes
    confident = torch.nn.functional.one_hot(labels, classes).float() * 50.0
    balanced = inception_score(IsParams(splits=1))(Features(torch.zeros(1000, 1), confident), None)
    assert balanced["is_mean"] == pytest.approx(classes, rel=1e-3)
    one_class = torch.zeros(1000, classes)
    one_class[:, 0] = 50.0
    assert inception_score(IsParams())(Features(torch.zeros(1000, 1), one_class), None)["is_mean"] == pytest.approx(1.0)


def test_inception_score_needs_logits():
    from gan_registry import IncompatibleError

    with pytest.raises(IncompatibleError, match="logits"):
        inception_score(IsParams())(Features(torch.zeros(100, 4)), None)


def _labelled(features, labels, logits=None):
    return Features(features.features if isinstance(features, Features) else features, logits, labels)


def test_intra_fid_is_the_mean_of_each_class_fid_against_that_class():
    """Per-class FID (intra-FID, Miyato & Koyama 2018): class c's samples against class c's reference images."""
    from gan_registry_image_metrics.metrics import FidParams

    labels = torch.arange(3000) % 3
    real = _labelled(gaussian(3000, np.zeros(4), np.eye(4), 0), labels)
    shift = torch.tensor([0.0, 1.0, 2.0])[labels][:, None]  # class c's samples off by c in every feature
    fake = _labelled(gaussian(3000, np.zeros(4), np.eye(4), 1).features + shift, labels)
    result = fid(FidParams(per_class=True))(fake, real)
    for c in range(3):
        alone = fid(None)(Features(fake.features[labels == c]), Features(real.features[labels == c]))["fid"]
        assert result[f"fid_class_{c}"] == pytest.approx(alone)
        assert result[f"fid_class_{c}"] == pytest.approx(4 * c**2, abs=0.1 + 0.05 * 4 * c**2)  # ||c·1||^2
    assert result["intra_fid"] == pytest.approx(sum(result[f"fid_class_{c}"] for c in range(3)) / 3)
    with pytest.raises(IncompatibleError, match="train with --conditional"):
        fid(FidParams(per_class=True))(Features(fake.features), real)


def test_class_accuracy_counts_samples_the_classifier_puts_in_their_class():
    from gan_registry_image_metrics.metrics import class_accuracy

    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0, 2, 0]), 3).float()  # two of six misread
    real = Features(torch.zeros(6, 2), torch.zeros(6, 3), labels)
    result = class_accuracy(None)(Features(torch.zeros(6, 2), logits, labels), real)
    assert result == {"class_accuracy": pytest.approx(4 / 6), "class_accuracy_worst": pytest.approx(0.5)}
    with pytest.raises(IncompatibleError, match="a classifier of the dataset's 3 classes"):
        class_accuracy(None)(Features(torch.zeros(6, 2), torch.zeros(6, 1008), labels), real)
    with pytest.raises(IncompatibleError, match="train with --conditional"):
        class_accuracy(None)(Features(torch.zeros(6, 2), logits), real)
