"""stacked-modes on real stacked digits, on a collapsed batch, and end to end through `gan run` and `gan eval`."""
from __future__ import annotations

import json
import math

import pytest
import torch

from gan_registry import DataContext, IncompatibleError, load_plugins
from gan_registry.testing import invoke_gan

REAL = 5_000  # stacked real samples measured: 15,000 digits to classify, ~10 s on one thread


@pytest.fixture(scope="module")
def measured():
    """The installed registry, a stacked set of REAL samples, the metric, and its value on those samples.

    Its first call builds the digit classifier: trained once per test session (the session shares one cache, so
    the digits FID tests' classifier is this one), then read from the cache.
    """
    registry = load_plugins()
    dataset = registry.get("dataset", "stacked")
    data = dataset.factory(dataset.params(count=REAL), DataContext(registry=registry))
    metric = registry.get("metric", "stacked-modes")
    measure = metric.factory(None)
    rng_before = torch.get_rng_state()
    real = measure(data.load(), data)
    return {"registry": registry, "data": data, "metric": metric, "measure": measure, "real": real,
            "rng_unchanged": torch.equal(rng_before, torch.get_rng_state())}


def test_real_stacked_digits_reach_nearly_every_mode(measured):
    real = measured["real"]
    print(f"stacked-modes on {REAL:,} real stacked digits: {real}")
    assert list(real) == ["modes", "kl", "samples", "classifier_accuracy"]  # --eval-every keys best.pt on modes
    assert all(isinstance(v, float) for v in real.values())
    assert real["samples"] == REAL and real["classifier_accuracy"] >= 0.93
    # 5,000 draws of 1,000 modes leave ~7 empty and a KL of ~0.1 from the counts' own spread
    assert real["modes"] >= 950 and real["kl"] < 0.2
    assert measured["rng_unchanged"]  # building (or training) the classifier leaves torch's generator alone


def test_a_collapsed_generator_hits_one_mode_at_the_largest_kl(measured):
    one = measured["data"].load()[7:8].expand(300, -1, -1, -1)
    collapsed = measured["measure"](one, measured["data"])
    assert collapsed["modes"] == 1 and collapsed["samples"] == 300
    assert collapsed["kl"] == pytest.approx(math.log(1000), abs=1e-6)
    two = torch.cat([measured["data"].load()[7:8].expand(150, -1, -1, -1), one[:150].flip(1)])  # channels reversed
    if two[0].ne(two[-1]).any():
        halves = measured["measure"](two, measured["data"])
        assert halves["modes"] <= 2 and halves["kl"] >= math.log(500) - 1e-6


def test_the_metric_is_registered_as_a_samples_metric_where_higher_is_better(measured):
    metric = measured["metric"]
    assert metric.inputs == "samples" and metric.better == "higher" and "nats" in metric.summary


def test_datasets_that_are_not_stacked_are_refused(measured):
    registry = measured["registry"]
    digits = registry.get("dataset", "digits")
    data = digits.factory(digits.params(), DataContext(registry=registry))
    with pytest.raises(IncompatibleError, match=r"not a stacked one .*channel_source"):
        measured["measure"](torch.zeros(4, 3, 32, 32), data)
    with pytest.raises(IncompatibleError, match=r"three-channel images"):
        measured["measure"](torch.zeros(4, 1, 32, 32), measured["data"])


def test_gan_run_on_stacked_then_gan_eval_stacked_modes(tmp_path, measured):
    out = tmp_path / "run"
    run = invoke_gan("run", "--arch", "dcgan", "--objective", "gan", "--dataset", "stacked", "--steps", "3",
                     "--out", out, "--no-progress")
    assert run.exit_code == 0, run.output
    evaluated = invoke_gan("eval", out, "--metric", "stacked-modes", "--samples", 500)
    assert evaluated.exit_code == 0, evaluated.output
    assert "stacked-modes" in evaluated.output and "modes" in evaluated.output
    report = json.loads((out / "eval.json").read_text())["metrics"]["stacked-modes"]
    assert 1 <= report["modes"] <= 500 and 0 <= report["kl"] <= math.log(1000) + 1e-9 and report["samples"] == 500
