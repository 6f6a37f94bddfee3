"""Feature metrics: each compares the features of generated images with those of reference images."""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

from gan_registry import IncompatibleError, Metric, hookimpl


def _enough(fake, real, least: int, what: str) -> None:
    if len(fake.features) < least or len(real.features) < least:
        raise IncompatibleError(f"{what} needs at least {least} generated and {least} reference images; got "
                                f"{len(fake.features)} and {len(real.features)}")


@dataclass
class FidParams:
    per_class: bool = field(default=False, metadata={"help": (
        "also the FID of each class's samples against that class's reference images, and their mean (intra-FID, "
        "as Miyato & Koyama 2018 report for conditional models); needs a conditional run and a labelled dataset")})


def _frechet(fake_features, real_features) -> float:
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    stats = [fid_features_to_statistics(f.double()) for f in (fake_features, real_features)]
    return fid_statistics_to_metric(*stats, verbose=False)[KEY_METRIC_FID]


def _labelled(fake, real, what: str) -> None:
    if fake.labels is None:
        raise IncompatibleError(f"{what} scores the classes a conditional generator was asked for, and these samples "
                                "have none (train with --conditional)")
    if real.labels is None:
        raise IncompatibleError(f"{what} compares with the reference's classes, and the reference has no labels")


def fid(params: FidParams):
    def measure(fake, real):
        _enough(fake, real, 2, "FID")
        result = {"fid": _frechet(fake.features, real.features)}
        if params is not None and params.per_class:
            _labelled(fake, real, "per-class FID")
            for c in sorted(set(real.labels.tolist())):
                mine, theirs = fake.features[fake.labels == c], real.features[real.labels == c]
                if len(mine) < 2 or len(theirs) < 2:
                    raise IncompatibleError(f"per-class FID needs at least 2 generated and 2 reference images of each "
                                            f"class; class {c} has {len(mine)} and {len(theirs)} (more --samples)")
                result[f"fid_class_{c}"] = _frechet(mine, theirs)
            per_class = [v for k, v in result.items() if k.startswith("fid_class_")]
            result["intra_fid"] = sum(per_class) / len(per_class)
        return result

    return measure


def class_accuracy(params):
    """The share of generated samples the dataset's classifier assigns the class they were generated for."""
    def measure(fake, real):
        _labelled(fake, real, "class accuracy")
        classes = int(real.labels.max()) + 1
        if fake.logits is None or fake.logits.shape[1] != classes:
            width = "none" if fake.logits is None else fake.logits.shape[1]
            raise IncompatibleError(f"class accuracy needs a classifier of the dataset's {classes} classes "
                                    f"(--extractor classifier); this extractor's logits: {width}")
        hits = (fake.logits.argmax(dim=1) == fake.labels).float()
        per_class = [hits[fake.labels == c].mean().item() for c in range(classes) if (fake.labels == c).any()]
        return {"class_accuracy": hits.mean().item(), "class_accuracy_worst": min(per_class)}

    return measure


@dataclass
class KidParams:
    subsets: int = field(default=100, metadata={"help": "random subsets the MMD is averaged over"})
    subset_size: int = field(default=1000, metadata={"help": "images per subset (capped at the smaller set's size)"})


def kid(params: KidParams):
    def measure(fake, real):
        from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

        _enough(fake, real, 2, "KID")
        size = min(params.subset_size, len(fake.features), len(real.features))
        out = kid_features_to_metric(fake.features, real.features, kid_subsets=params.subsets,
                                     kid_subset_size=size, verbose=False)
        return {"kid_mean": out[KEY_METRIC_KID_MEAN], "kid_std": out[KEY_METRIC_KID_STD], "kid_subset_size": size}

    return measure


@dataclass
class IsParams:
    splits: int = field(default=10, metadata={"help": "splits of the generated set; the score is their mean"})


def inception_score(params: IsParams):
    def measure(fake, real):
        from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

        if fake.logits is None:
            raise IncompatibleError("the Inception Score needs class logits, and this extractor gives none")
        if len(fake.logits) < params.splits:
            raise IncompatibleError(f"the Inception Score needs at least {params.splits} samples (splits)")
        out = isc_features_to_metric(fake.logits, splits=params.splits)
        return {"is_mean": out[KEY_METRIC_ISC_MEAN], "is_std": out[KEY_METRIC_ISC_STD]}

    return measure


@dataclass
class NeighbourParams:
    k: int = field(default=3, metadata={"help": "nearest neighbours whose distance makes each sample's ball"})


def precision_recall(params: NeighbourParams):
    def measure(fake, real):
        from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

        _enough(fake, real, params.k + 1, "precision/recall")
        large = len(fake.features) * len(real.features) > 2e8  # the full distance matrix would take GBs
        out = prc_features_to_metric(fake.features, real.features, prc_neighborhood=params.k,
                                     prc_batch_size=10000, save_cpu_ram=large, verbose=False)
        return {"precision": out[KEY_METRIC_PRECISION], "recall": out[KEY_METRIC_RECALL]}

    return measure


def density_coverage(params: NeighbourParams):
    def measure(fake, real):
        import prdc

        _enough(fake, real, params.k + 1, "density/coverage")
        with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
            out = prdc.compute_prdc(real_features=real.features.numpy(), fake_features=fake.features.numpy(),
                                    nearest_k=params.k)
        return {"density": float(out["density"]), "coverage": float(out["coverage"])}

    return measure


@hookimpl
def register_metrics(register):
    def feature_metric(name, summary, factory, better, params=None):
        register(Metric(name=name, summary=summary, factory=factory, params=params, inputs="features", better=better))

    feature_metric("fid", "Fréchet distance between Gaussians fitted to generated and real features (lower is better)",
                   fid, "lower", FidParams)
    feature_metric("class-accuracy", "share of a conditional generator's samples that the dataset's classifier puts "
                   "in the class asked for (higher is better)", class_accuracy, "higher")
    feature_metric("kid", "kernel (cubic polynomial) MMD between features, mean and std over subsets (lower is better)",
                   kid, "lower", KidParams)
    feature_metric("is", "Inception Score: exp of the mean KL between class posteriors and their marginal (higher "
                   "is better)", inception_score, "higher", IsParams)
    feature_metric("precision-recall", "k-NN manifold precision (fidelity) and recall (diversity), Kynkäänniemi et al."
                   " 2019", precision_recall, "higher", NeighbourParams)
    feature_metric("density-coverage", "k-NN density and coverage (Naeem et al. 2020), robust to outliers",
                   density_coverage, "higher", NeighbourParams)
