"""The extractors and `gan eval` end to end: real weights files, real image folders, real runs."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from gan_registry.testing import invoke_gan as gan
from gan_registry_image_metrics.inception import WEIGHTS_FILE, write_random_weights


def write_pngs(folder: Path, images: torch.Tensor) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).squeeze(-1).numpy()
        Image.fromarray(array).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    return write_random_weights(tmp_path_factory.mktemp("weights") / WEIGHTS_FILE, seed=0)


def test_inception_end_to_end_scores_two_different_image_sets_apart(tmp_path, inception_weights):
    g = torch.Generator().manual_seed(0)
    smooth = torch.rand(16, 3, 1, 1, generator=g).expand(-1, -1, 32, 32) * 0.5  # flat dark colours
    noisy = torch.rand(16, 3, 32, 32, generator=g)  # bright noise
    real, fake = write_pngs(tmp_path / "real", smooth), write_pngs(tmp_path / "fake", noisy)
    result = gan("eval", "--real", real, "--fake", fake, "--metric", "fid", "--extractor", "inception-v3",
                 "-p", f"extractor.weights={inception_weights}", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["metrics"]["fid"]["fid"] > 1.0
    assert "299x299" in report["protocol"]["resize"] and report["protocol"]["extractor"] == "inception-v3"
    same = gan("eval", "--real", real, "--fake", real, "--metric", "fid", "--extractor", "inception-v3",
               "-p", f"extractor.weights={inception_weights}", "--device", "cpu", "--json")
    assert abs(json.loads(same.output)["metrics"]["fid"]["fid"]) < 1e-3


def test_a_missing_inception_weights_file_is_a_clean_exit_2_naming_the_file(tmp_path):
    folder = write_pngs(tmp_path / "imgs", torch.rand(4, 1, 16, 16))
    result = subprocess.run([sys.executable, "-m", "gan_registry", "eval", "--real", str(folder), "--fake",
                             str(folder), "--metric", "fid", "--extractor", "inception-v3", "-p",
                             f"extractor.weights={tmp_path / 'nowhere.pth'}"],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 2
    assert WEIGHTS_FILE in result.stderr and "nowhere.pth" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_weights_file_with_code_in_it_is_refused_unrun(tmp_path):
    marker = tmp_path / "ran"
    crafted = tmp_path / WEIGHTS_FILE
    with open(crafted, "wb") as f:
        pickle.dump({"fc.weight": _Payload(marker)}, f)
    folder = write_pngs(tmp_path / "imgs", torch.rand(4, 1, 16, 16))
    result = gan("eval", "--real", folder, "--fake", folder, "--metric", "fid", "--extractor", "inception-v3",
                 "-p", f"extractor.weights={crafted}")
    assert result.exit_code == 2
    assert "refused" in result.output and "system" in result.output
    assert not marker.exists()


def test_the_digits_classifier_is_accurate_and_cached(tmp_path):
    from gan_registry import load_plugins
    from gan_registry.testing import Evaluator, reference_of

    registry = load_plugins()
    dataset = registry.get("dataset", "digits")
    params = dataset.default_params()
    data = dataset.factory(params, __import__("gan_registry").DataContext())
    reference = reference_of(dataset, params, data, None)
    evaluator = Evaluator.choose(registry, ["fid"], {}, "classifier", reference)
    protocol = evaluator.protocol("-")
    print(f"digits classifier: test accuracy {protocol['test_accuracy']} on {protocol['tested_on']} held-out images")
    assert protocol["test_accuracy"] >= 0.93 and protocol["tested_on"] == 180
    cached = list(Path(os.environ["GAN_REGISTRY_CACHE"], "extractors", "classifier").glob("*.safetensors"))
    assert cached
    again = Evaluator.choose(registry, ["fid"], {}, "classifier", reference).built_extractor()
    assert torch.equal(again.net[0].weight, evaluator.built_extractor().net[0].weight)
    evaluator.reference_features()
    fresh = Evaluator.choose(registry, ["fid"], {}, "classifier", reference)
    fresh.reference_features()
    assert fresh._cached and "(features cached)" in fresh.protocol("-")["reference"]


def test_gan_eval_real_and_fake_sources(tmp_path):
    result = gan("eval", "--real", "digits", "--fake", "digits:heldout", "--metric", "fid", "--metric",
                 "precision-recall", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["metrics"]["fid"]["fid"] >= 0 and report["protocol"]["extractor"] == "classifier"
    assert "training split" in report["protocol"]["reference"] and "held-out" in report["protocol"]["generated"]
    unknown = gan("eval", "--real", "digits", "--fake", str(tmp_path / "missing"), "--metric", "fid")
    assert unknown.exit_code == 2 and "not a run folder" in unknown.output
    lonely = gan("eval", "--real", "digits", "--metric", "fid")
    assert lonely.exit_code == 2 and "--fake" in lonely.output


def test_a_third_party_extractor_plugin_feeds_the_feature_metrics():
    """register_extractors from a plugin of its own: raw pixels as features, as the hook reference shows."""
    from gan_registry import Extractor, hookimpl
    from gan_registry.testing import isolated_registry
    from gan_registry.testing import Evaluator, ImageSet
    import gan_registry_image_metrics.metrics as metrics

    class Flattened:
        protocol = {"network": "raw pixels, flattened"}
        cache_key = "flatten-1"

        def extract(self, images):
            return {"features": images.flatten(1)}

    class Pixels:
        @hookimpl
        def register_extractors(register):
            register(Extractor(name="pixels", summary="raw pixels as features",
                               factory=lambda params, context: Flattened()))

    registry = isolated_registry(("pixels", Pixels), ("image-metrics", metrics))
    images = torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    reference = ImageSet(images, (0.0, 1.0), "64 random images")
    evaluator = Evaluator.choose(registry, ["fid", "precision-recall"], {}, "pixels", reference)
    same = evaluator.measure(ImageSet(images, (0.0, 1.0), "the same"))
    assert abs(same["metrics"]["fid"]["fid"]) < 1e-6 and same["metrics"]["precision-recall"]["precision"] == 1.0
    assert same["protocol"]["network"] == "raw pixels, flattened" and same["protocol"]["extractor"] == "pixels"
    shifted = evaluator.measure(ImageSet(images * 0.5, (0.0, 1.0), "darker"))
    assert shifted["metrics"]["fid"]["fid"] > 0.1
