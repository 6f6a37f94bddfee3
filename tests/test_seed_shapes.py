"""The seeds' own data shapes train at their defaults: the DCGAN/WGAN-GP tutorials' 64x64 RGB faces from a folder,
and the MLP and LeNet tutorials' 28 px MNIST from IDX files (files the tests make: coloured shapes and tiny IDX files)."""
import json
import struct

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gan_registry._plan import Settings, make_plan
from gan_registry.plugins import load_registry
from gan_registry.testing import run_gan


def _shapes(folder, n=72, side=64):
    """Coloured discs and squares on dark backgrounds: images with structure, as faces have."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        picture = Image.new("RGB", (side, side), tuple(int(v) for v in rng.integers(0, 60, 3)))
        draw = ImageDraw.Draw(picture)
        x, y = (int(v) for v in rng.integers(16, 48, 2))
        r = int(rng.integers(6, 14))
        colour = tuple(int(v) for v in rng.integers(120, 256, 3))
        (draw.ellipse if i % 2 else draw.rectangle)((x - r, y - r, x + r, y + r), fill=colour)
        picture.save(folder / f"{i:03d}.png")


def _idx(raw, prefix, count, seed):
    rng = np.random.default_rng(seed)
    images = (rng.random((count, 28, 28)) > 0.7).astype(np.uint8) * 255
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, count, 28, 28) + images.tobytes())
    labels = (np.arange(count) % 10).astype(np.uint8)
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, count) + labels.tobytes())


def _losses(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [v for r in records for k, v in r.items() if k.startswith("loss/")]


def test_dcgan_wgan_gp_trains_on_a_folder_of_64px_rgb_images_at_its_defaults(tmp_path):
    _shapes(tmp_path / "faces")
    plan = make_plan(load_registry(), Settings(arch="dcgan", objective="wgan-gp", dataset="folder",
                                               data_dir=str(tmp_path / "faces")), for_training=False)
    assert plan.spec.sample_shape == (3, 64, 64)
    assert plan.settings.steps == 280 and plan.defaults_from["steps"] == "objective 'wgan-gp', 0.28x architecture 'dcgan'"
    run = run_gan("run", "--arch", "dcgan", "--objective", "wgan-gp", "--dataset", "folder", "--data-dir",
                  tmp_path / "faces", "--steps", "1", "--log-every", "1", "--out", tmp_path / "run")
    assert run.returncode == 0, run.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["sample_shape"] == [3, 64, 64] and config["settings"]["batch_size"] == 64
    assert _losses(tmp_path / "run") and all(np.isfinite(_losses(tmp_path / "run")))


@pytest.mark.parametrize("arch", ["mlp", "lenet"])
def test_the_mnist_tutorials_pairs_train_on_28px_idx_files_at_their_defaults(tmp_path, arch):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _idx(raw, "train", 128, seed=1)
    _idx(raw, "t10k", 32, seed=2)
    run = run_gan("run", "--arch", arch, "--objective", "gan", "--dataset", "mnist", "--data-dir", tmp_path / "data",
                  "-p", "dataset.download=false", "--steps", "3", "--log-every", "1", "--out", tmp_path / "run")
    assert run.returncode == 0, run.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["sample_shape"] == [1, 28, 28]
    assert all(np.isfinite(_losses(tmp_path / "run")))
