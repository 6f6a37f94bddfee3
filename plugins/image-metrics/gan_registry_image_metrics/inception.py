"""inception-v3: the FID reference network, torch-fidelity's port of the TensorFlow graph.

The weights are never downloaded here (a download that hangs offline helps nobody): they come from the
torch hub cache, where torch-fidelity itself keeps them, or from `-p extractor.weights=PATH`. The file is
untrusted input: it is opened with `weights_only=True` by gan-registry, and torch-fidelity gets the checked
state dict, never the path (its own loader unpickles).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from gan_registry import Extractor, IncompatibleError, UserError, hookimpl, load_weights

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_FILE}"
FEATURES, LOGITS = "2048", "logits_unbiased"  # torch-fidelity's layers for FID/KID/PRC and for IS


@dataclass
class InceptionParams:
    weights: str = field(default="", metadata={
        "help": f"path to torch-fidelity's {WEIGHTS_FILE} (default: the torch hub cache's checkpoints folder)"})


def default_weights_path() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def network(state):
    """torch-fidelity's FeatureExtractorInceptionV3 holding `state` (None: its layers' own random init)."""
    import torch_fidelity.feature_extractor_inceptionv3 as module

    class Inception(module.FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            if state_dict is not None:
                return super().load_state_dict(state_dict, strict=True)

    original = module.load_state_dict_from_url
    module.load_state_dict_from_url = lambda *args, **kwargs: state  # the checked weights, never a download
    try:
        return Inception("inception-v3-compat", [FEATURES, LOGITS])
    finally:
        module.load_state_dict_from_url = original


def write_random_weights(path, seed: int = 0) -> Path:
    """A weights file of the real architecture with He-normal random weights, for tests and benchmarks offline.

    He-normal, not PyTorch's default init: with that, activations shrink through Inception's depth and every
    feature (and so every FID) reads zero.
    """
    import torch

    torch.manual_seed(seed)
    net = network(None)
    for layer in net.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                torch.nn.init.zeros_(layer.bias)
    torch.save(net.state_dict(), path)
    return Path(path)


class InceptionFeatures:
    def __init__(self, params: InceptionParams, context) -> None:
        path = Path(params.weights).expanduser() if params.weights else default_weights_path()
        if not path.is_file():
            raise UserError(
                f"extractor 'inception-v3' needs its weights file {WEIGHTS_FILE}, not found at {path}: download it"
                f" from {WEIGHTS_URL} where there is internet and put it there, or give -p extractor.weights=PATH"
                " (nothing is downloaded at run time); offline, --extractor classifier needs no file")
        state = load_weights(path)
        try:
            self.net = network(state).to(context.device)
        except RuntimeError as error:
            raise UserError(f"weights file {path} does not fit Inception-v3 "
                            f"({str(error).splitlines()[0].rstrip(':')})") from None
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        self.cache_key = digest.hexdigest()[:16]
        self.protocol = {
            "network": "Inception-v3, torch-fidelity's port of the TF FID graph (pool3, 2048 features)",
            "weights": f"{path.name} (sha256 {self.cache_key})",
            "resize": "to 299x299 by torch-fidelity's TF-1.x bilinear, from the images' own size",
            "values": "quantised to 8 bits; grey images repeated to RGB",
        }

    def extract(self, images):
        import torch

        if images.shape[1] not in (1, 3):
            raise IncompatibleError(f"inception-v3 takes grey or RGB images, not {images.shape[1]} channels")
        pixels = (images * 255).round().to(torch.uint8)
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)
        features, logits = self.net(pixels)
        return {"features": features, "logits": logits}


@hookimpl
def register_extractors(register):
    register(Extractor(name="inception-v3", summary="Inception-v3 pool3 features, the FID reference network "
                       "(torch-fidelity; needs its weights file)", params=InceptionParams, factory=InceptionFeatures))
