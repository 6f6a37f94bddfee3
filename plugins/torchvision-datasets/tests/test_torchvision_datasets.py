"""The torchvision datasets on tiny files written in the real formats (IDX, CIFAR's pickled batches).

Nothing here downloads: the subprocesses point their proxy at a closed local port, so the
download attempt fails at once whether or not this machine has network.
"""
from __future__ import annotations

import gzip
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_registry import DataContext, UserError
from gan_registry.testing import isolated_registry
from gan_registry_torchvision_datasets import cifar10, fashion_mnist, mnist

N_TRAIN, N_TEST = 40, 24
CIFAR_PER_BATCH, CIFAR_TEST = 4, 6
CONSTANT = 200  # image 0 of every train split is this one value everywhere


def registry():
    return isolated_registry(("mnist", mnist), ("fashion-mnist", fashion_mnist), ("cifar10", cifar10))


def source(name, data_dir, image_size=None, **params):
    dataset = registry().get("dataset", name)
    return dataset.factory(dataset.params(**params), DataContext(data_dir=str(data_dir), image_size=image_size))


def pattern(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """uint8 images where each pixel's value depends on its image, channel, row and column."""
    index = np.indices((n, *shape))
    weights = [seed + 7, 11, 3, 5] if len(shape) == 3 else [seed + 7, 3, 5]
    images = sum(w * i for w, i in zip(weights, index)) % 256
    images[0] = CONSTANT
    return images.astype(np.uint8)


def scaled(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float() / 127.5 - 1


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX format of yann.lecun.com/exdb/mnist: 0, 0, type 0x08 (ubyte), ndim; big-endian sizes; data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(data_dir: Path, class_name: str, gzipped: bool) -> dict[str, np.ndarray]:
    raw = data_dir / class_name / "raw"
    raw.mkdir(parents=True)
    images = {"train": pattern(N_TRAIN, (28, 28), seed=1), "t10k": pattern(N_TEST, (28, 28), seed=2)}
    for prefix, array in images.items():
        files = {f"{prefix}-images-idx3-ubyte": array, f"{prefix}-labels-idx1-ubyte": np.arange(len(array)) % 10}
        for name, content in files.items():
            if gzipped:
                (raw / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(content)))
            else:
                (raw / name).write_bytes(idx_bytes(content))
    return {"train": images["train"][:, None], "test": images["t10k"][:, None]}


def write_cifar(data_dir: Path) -> dict[str, np.ndarray]:
    """cifar-10-batches-py as in cifar-10-python.tar.gz: pickled dicts, rows of 1024 R, 1024 G, 1024 B bytes."""
    folder = data_dir / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train = pattern(5 * CIFAR_PER_BATCH, (3, 32, 32), seed=3)
    test = pattern(CIFAR_TEST, (3, 32, 32), seed=4)
    batches = [(f"data_batch_{i + 1}", train[i * CIFAR_PER_BATCH:(i + 1) * CIFAR_PER_BATCH]) for i in range(5)]
    for name, images in batches + [("test_batch", test)]:
        entry = {"batch_label": name, "data": images.reshape(len(images), -1),
                 "labels": [i % 10 for i in range(len(images))], "filenames": [f"{i}.png" for i in range(len(images))]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {"num_cases_per_batch": CIFAR_PER_BATCH, "num_vis": 3072,
            "label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {"train": train, "test": test}


OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": "",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
"""A proxy on the discard port, which nothing listens on here: every download is refused at once."""


def start_gan(*args, cwd) -> subprocess.Popen:
    command = [shutil.which("gan")] if shutil.which("gan") else [sys.executable, "-m", "gan_registry"]
    env = {**os.environ, **OFFLINE}
    env.pop("GAN_REGISTRY_BLOCK_PLUGINS", None)
    return subprocess.Popen([*command, *map(str, args)], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def gan_runs(tmp_path_factory):
    """The two `gan run` subprocesses, started together (each spends seconds importing torch)."""
    root = tmp_path_factory.mktemp("gan")
    write_idx(root / "data", "MNIST", gzipped=True)
    common = ["run", "--arch", "mlp", "--objective", "gan", "--dataset", "mnist", "--steps", "5", "--batch-size", "8",
              "--device", "cpu", "--no-progress"]
    started = {
        "missing": start_gan(*common, "--data-dir", root / "empty", "--out", root / "run-missing", cwd=root),
        "tiny": start_gan(*common, "--data-dir", root / "data", "--out", root / "run", cwd=root),
    }
    done = {}
    for key, process in started.items():
        stdout, stderr = process.communicate(timeout=120)
        done[key] = (process.returncode, stdout, stderr)
    return root, done


@pytest.fixture
def offline(monkeypatch):
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("name, class_name, gzipped", [("mnist", "MNIST", False), ("fashion-mnist", "FashionMNIST", True)])
def test_idx_files_round_trip(tmp_path, offline, name, class_name, gzipped):
    expected = write_idx(tmp_path, class_name, gzipped)
    data = source(name, tmp_path)
    assert data.sample_shape == (1, 28, 28) and data.value_range == (-1.0, 1.0)

    train = data.load()
    assert train.dtype == torch.float32 and train.shape == (N_TRAIN, 1, 28, 28)
    assert train.min() >= -1 and train.max() <= 1 and train.min() < -0.9 and train.max() > 0.9
    torch.testing.assert_close(train, scaled(expected["train"]))
    assert train[1, 0, 3, 20].item() == pytest.approx((1 * 8 + 3 * 3 + 20 * 5) / 127.5 - 1)
    torch.testing.assert_close(data.load_heldout(), scaled(expected["test"]))
    if gzipped:  # unpacked next to the archives, as torchvision's own download does
        assert (tmp_path / class_name / "raw" / "train-images-idx3-ubyte").is_file()

    test_split = source(name, tmp_path, split="test")
    torch.testing.assert_close(test_split.load(), scaled(expected["test"]))
    torch.testing.assert_close(test_split.load_heldout(), scaled(expected["train"]))


def test_cifar10_round_trip_and_checksums(tmp_path, offline):
    expected = write_cifar(tmp_path)
    assert source("cifar10", tmp_path).sample_shape == (3, 32, 32)

    # torchvision checks every file against the official release's MD5: these are not it
    with pytest.raises(UserError, match=r"cifar10: .* do not match the MD5 checksums .*dataset\.verify=false"):
        source("cifar10", tmp_path).load()

    data = source("cifar10", tmp_path, verify=False)
    train = data.load()
    assert train.dtype == torch.float32 and train.shape == (5 * CIFAR_PER_BATCH, 3, 32, 32)
    assert train.min() >= -1 and train.max() <= 1
    torch.testing.assert_close(train, scaled(expected["train"]))  # channels first, rows and columns in place
    assert train[5, 2, 7, 30].item() == pytest.approx((5 * 10 + 2 * 11 + 7 * 3 + 30 * 5) % 256 / 127.5 - 1)
    torch.testing.assert_close(data.load_heldout(), scaled(expected["test"]))


@pytest.mark.parametrize("size", [16, 64])
def test_image_size_resizes_on_load(tmp_path, offline, size):
    write_idx(tmp_path, "MNIST", gzipped=False)
    write_cifar(tmp_path)
    for name, channels, count in [("mnist", 1, N_TRAIN), ("cifar10", 3, 5 * CIFAR_PER_BATCH)]:
        params = {"verify": False} if name == "cifar10" else {}
        data = source(name, tmp_path, image_size=size, **params)
        assert data.sample_shape == (channels, size, size)
        images = data.load()
        assert images.shape == (count, channels, size, size) and images.dtype == torch.float32
        assert images.min() >= -1 and images.max() <= 1
        torch.testing.assert_close(images[0], torch.full_like(images[0], CONSTANT / 127.5 - 1))
        assert images[1:].std() > 0.2  # the patterns survive the resize
        assert data.load_heldout().shape[1:] == (channels, size, size)


def test_missing_or_broken_files_are_user_errors(tmp_path, offline):
    assert source("mnist", tmp_path / "none").sample_shape == (1, 28, 28)  # describing needs no files
    with pytest.raises(UserError, match=r"^mnist: no data in .*MNIST/raw; put train-images-idx3-ubyte\(\.gz\).* "
                                        r"or run with -p dataset\.download=true and network access$"):
        source("mnist", tmp_path / "none", download=False).load()

    raw = tmp_path / "partial" / "FashionMNIST" / "raw"
    write_idx(tmp_path / "partial", "FashionMNIST", gzipped=False)
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match=r"lacks t10k-labels-idx1-ubyte; put t10k-labels-idx1-ubyte\(\.gz\) there"):
        source("fashion-mnist", tmp_path / "partial").load()

    write_idx(tmp_path / "cut", "MNIST", gzipped=True)
    archive = tmp_path / "cut" / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(UserError, match=r"could not unpack .*train-images-idx3-ubyte\.gz"):
        source("mnist", tmp_path / "cut").load()
    assert not archive.with_suffix("").exists()  # no truncated file left for the next run

    write_idx(tmp_path / "flat", "MNIST", gzipped=False)  # images stored as one 2-D array: torchvision refuses
    (tmp_path / "flat" / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((40, 784))))
    with pytest.raises(UserError, match=r"^mnist: could not read the MNIST files in .*ValueError: x should have 3"):
        source("mnist", tmp_path / "flat").load()


def test_gan_run_without_files_prints_one_error_line(gan_runs):
    _root, done = gan_runs
    returncode, stdout, stderr = done["missing"]
    assert returncode == 2, stdout + stderr
    output = (stdout + stderr).strip()
    assert "Traceback" not in output
    assert output.count("\n") == 0, output
    assert output.startswith("Error: mnist: no data in ") and "train-images-idx3-ubyte" in output
    assert "download failed" in output


def test_gan_run_trains_on_tiny_mnist(gan_runs):
    root, done = gan_runs
    returncode, stdout, stderr = done["tiny"]
    assert returncode == 0, stdout + stderr
    assert (root / "run" / "checkpoints" / "last.pt").is_file()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("verify", [True, False])
def test_crafted_cifar_batches_never_run_code(tmp_path, offline, verify):
    """CIFAR-10's batches are pickles: a crafted one is refused, unrun, whether or not checksums are checked."""
    write_cifar(tmp_path)
    marker = tmp_path / "PWNED"
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": _Payload(marker), "labels": []}, protocol=2))
    expected = (r"do not match the MD5 checksums" if verify
                else r"refused .*data_batch_3: it is not a CIFAR-10 batch \(it names posix\.system.*nothing in it was run")
    with pytest.raises(UserError, match=expected):
        source("cifar10", tmp_path, verify=verify).load()
    assert not marker.exists()


def test_cifar_batches_of_the_wrong_shape_are_refused(tmp_path, offline):
    write_cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    entry = {"data": np.zeros((4, 100), dtype=np.uint8), "labels": [0, 1, 2, 3]}
    (folder / "data_batch_2").write_bytes(pickle.dumps(entry, protocol=2))
    with pytest.raises(UserError, match=r"data_batch_2 is not a CIFAR-10 batch: its 'data' is not rows of 3072"):
        source("cifar10", tmp_path, verify=False).load()
    objects = {"data": np.array([object()] * 3072, dtype=object).reshape(1, 3072), "labels": [0]}
    (folder / "data_batch_2").write_bytes(pickle.dumps(objects, protocol=2))
    with pytest.raises(UserError, match=r"refused .*data_batch_2"):
        source("cifar10", tmp_path, verify=False).load()


def test_labels_and_class_names(tmp_path, offline):
    write_idx(tmp_path, "MNIST", gzipped=False)
    mnist_data = source("mnist", tmp_path)
    assert mnist_data.classes == tuple("0123456789")
    assert torch.equal(mnist_data.load_labels(), torch.arange(N_TRAIN) % 10)
    assert len(mnist_data.load_heldout_labels()) == len(mnist_data.load_heldout())
    write_cifar(tmp_path / "c")
    cifar = source("cifar10", tmp_path / "c", verify=False)
    assert cifar.classes[0] == "airplane" and len(cifar.classes) == 10
    assert torch.equal(cifar.load_labels(), torch.arange(5 * CIFAR_PER_BATCH) % CIFAR_PER_BATCH % 10)
