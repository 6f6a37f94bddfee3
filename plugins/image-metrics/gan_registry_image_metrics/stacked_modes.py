"""stacked-modes: the modes (digit triples) of Stacked MNIST a generator reaches, as in VEEGAN and PacGAN.

Each channel of each generated sample is classified by a digit classifier trained on the dataset the channels
come from (this plugin's `classifier` extractor, trained once and cached), which makes the sample one of the
1,000 modes 100 * a + 10 * b + c. Reported:
- modes: how many of the 1,000 are hit at least once;
- kl: KL(P || U) = sum_m p_m log(p_m / (1/1000)) in nats (natural log), P the histogram of the samples over
  the modes, U uniform; empty modes add 0 (0 log 0 = 0). 0 for a perfectly even histogram, log(1000) = 6.91
  for samples all on one mode. (VEEGAN, PacGAN and R3GAN use 26,000 samples: `gan eval --samples 26000`.)
- samples, and classifier_accuracy: the classifier's accuracy on the source's held-out digits, which bounds
  how far the counts can be trusted.
"""
from __future__ import annotations

import math

from gan_registry import ExtractorContext, IncompatibleError, Metric, cache_dir, hookimpl, to_unit

BATCH = 250  # images per forward pass: the fastest on two CPU cores (larger batches fall out of cache)
_built: dict = {}
"""Classifiers already built in this process, by (data key, device, cache folder): `--eval-every` asks often."""


def classifier_for(reference: dict, device):
    """The digit classifier of a stacked dataset's channel source (trained on first use, then cached)."""
    import torch

    from .classifier import ClassifierFeatures, ClassifierParams

    folder = cache_dir("extractors")
    key = (reference.get("channel_source_key"), str(device), str(folder))
    if key not in _built:
        context = ExtractorContext(device=device, cache_dir=folder, data=reference["channel_source"],
                                   data_key=reference.get("channel_source_key"), seed=0)
        with torch.random.fork_rng(devices=[]):  # training seeds torch's generator: leave the caller's as it was
            _built[key] = ClassifierFeatures(ClassifierParams(), context)
    return _built[key]


def mode_counts(samples, value_range, classifier, batch: int = BATCH):
    """How many samples land on each of the 1,000 modes, an int64 tensor (1000,)."""
    import torch

    digits = []
    with torch.inference_mode():
        for start in range(0, len(samples), batch):
            chunk = samples[start:start + batch]
            channels = [classifier.extract(to_unit(chunk[:, c:c + 1], value_range))["logits"].argmax(1)
                        for c in range(3)]
            digits.append(channels[0] * 100 + channels[1] * 10 + channels[2])
    return torch.bincount(torch.cat(digits).cpu(), minlength=1000)


def kl_from_uniform(counts) -> float:
    """KL(P || uniform) in nats of a histogram of counts; empty bins add 0."""
    p = counts.double() / counts.sum()
    p = p[p > 0]
    return float((p * (p * counts.numel()).log()).sum())


def build(params):
    def evaluate(samples, data) -> dict:
        reference = getattr(data, "reference", None) or {}
        if "channel_source" not in reference:
            raise IncompatibleError("it classifies the three digit channels of Stacked MNIST, and this dataset is "
                                    "not a stacked one (no DataSource.reference['channel_source']); use --dataset "
                                    "stacked")
        if samples.ndim != 4 or samples.shape[1] != 3:
            raise IncompatibleError(f"it needs three-channel images (N, 3, H, W); these samples have shape "
                                    f"{tuple(samples.shape)}")
        if len(samples) == 0:
            raise IncompatibleError("it needs at least one sample")
        classifier = classifier_for(reference, samples.device)
        counts = mode_counts(samples.detach(), data.value_range, classifier)
        return {"modes": float((counts > 0).sum()), "kl": kl_from_uniform(counts), "samples": float(len(samples)),
                "classifier_accuracy": float(classifier.accuracy)}

    return evaluate


@hookimpl
def register_metrics(register):
    register(Metric(name="stacked-modes",
                    summary=f"Stacked MNIST: digit triples hit (of 1,000) and KL(generated || uniform) in nats, "
                            f"max log 1000 = {math.log(1000):.2f} (VEEGAN/PacGAN protocol, 26,000 samples)",
                    inputs="samples", better="higher", factory=build))
