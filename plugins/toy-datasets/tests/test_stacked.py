"""The stacked dataset: three digits of a labelled one-channel dataset as the channels of one image."""
from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
import pytest
import torch

from gan_registry import DataContext, Dataset, DataSource, IncompatibleError, hookimpl
from gan_registry.testing import invoke_gan, isolated_registry
from gan_registry_toy_datasets import digits, stacked

COUNT = 300


def registry(*extra):
    return isolated_registry(("digits", digits), ("stacked", stacked), *extra)


def build(reg=None, image_size=None, data_dir=None, **params) -> DataSource:
    reg = reg or registry()
    dataset = reg.get("dataset", "stacked")
    return dataset.factory(dataset.params(**{"count": COUNT, **params}),
                           DataContext(data_dir=data_dir, image_size=image_size, registry=reg))


def which_images(channels: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """For each one-channel image of `channels` (K, 1, H, W), the index of the identical image in `pool`."""
    index = torch.cdist(channels.flatten(1).double(), pool.flatten(1).double()).argmin(dim=1)
    assert torch.equal(pool[index], channels)  # every channel is one of the pool's images, unchanged
    return index


@pytest.fixture(scope="module")
def source():
    """The digits the default stacked set is made of: training and held-out images with their labels."""
    data = digits.build(digits.DigitsParams(), DataContext())
    return data.load(), data.load_labels(), data.load_heldout(), data.load_heldout_labels()


def test_samples_are_three_source_digits_labelled_by_their_triple(source):
    images, labels, heldout_images, _ = source
    data = build()
    assert data.sample_shape == (3, 32, 32) and data.value_range == (-1.0, 1.0)
    assert data.classes == tuple(f"{m:03d}" for m in range(1000)) and data.classes[427] == "427"
    assert data.reference["modes"] == 1000 and data.reference["channel_source"].sample_shape == (1, 32, 32)

    x, y = data.load(), data.load_labels()
    assert x.dtype == torch.float32 and x.shape == (COUNT, 3, 32, 32)
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.9 and x.max() > 0.9
    assert y.dtype == torch.int64 and y.shape == (COUNT,) and 0 <= y.min() and y.max() < 1000
    index = which_images(x.reshape(-1, 1, 32, 32), images).reshape(COUNT, 3)  # from the training digits only
    digit = labels[index]
    assert torch.equal(y, digit[:, 0] * 100 + digit[:, 1] * 10 + digit[:, 2])
    assert len(set(y.tolist())) > 250  # 300 draws of 1,000 triples: nearly all distinct
    assert torch.cdist(x.reshape(-1, 1024), heldout_images.reshape(-1, 1024)).min() > 0.1  # no held-out digit


def test_the_triples_are_fixed_by_the_seed_and_the_heldout_set_is_apart(source):
    _, _, heldout_images, heldout_labels = source
    first, again, other = build(), build(), build(seed=1)
    assert torch.equal(first.load(), again.load()) and torch.equal(first.load_labels(), again.load_labels())
    assert not torch.equal(first.load_labels(), other.load_labels())

    h, hy = first.load_heldout(), first.load_heldout_labels()
    assert h.shape == (COUNT // 10, 3, 32, 32) and hy.shape == (COUNT // 10,)
    assert torch.equal(h, again.load_heldout())
    index = which_images(h.reshape(-1, 1, 32, 32), heldout_images).reshape(-1, 3)  # the held-out digits only
    digit = heldout_labels[index]
    assert torch.equal(hy, digit[:, 0] * 100 + digit[:, 1] * 10 + digit[:, 2])


def test_size_goes_to_the_source_and_image_size_overrides_it():
    assert build(size=16).sample_shape == (3, 16, 16)
    assert build(size=16).load().shape == (COUNT, 3, 16, 16)
    assert build(size=16, image_size=8).load().shape == (COUNT, 3, 8, 8)


def test_the_channel_source_key_is_the_engines_name_for_the_source():
    """So the digit classifier trained for `gan eval --real digits` also serves stacked-modes (one training)."""
    from gan_registry.testing import dataset_key

    reg = registry()
    data = build(reg, size=16)
    source = reg.get("dataset", "digits")
    expected = dataset_key(source, digits.DigitsParams(size=16), data.reference["channel_source"], None)
    assert data.reference["channel_source_key"] == expected
    assert build(reg, size=16, source="digits").reference["channel_source_key"] == expected
    assert build(reg).reference["channel_source_key"] != expected


@dataclass
class _FakeParams:
    channels: int = field(default=1, metadata={"help": "channels"})


def _fake_plugin() -> ModuleType:
    """plain: one-channel, no labels; rgb: three-channel, 10 classes; five: one-channel, 5 classes."""
    def source(channels, classes):
        def factory(params, context):
            n = 20
            return DataSource(sample_shape=(channels, 8, 8), value_range=(-1.0, 1.0),
                              load=lambda: torch.zeros(n, channels, 8, 8),
                              classes=None if classes is None else tuple(map(str, range(classes))),
                              load_labels=None if classes is None else (lambda: torch.arange(n) % classes))
        return factory

    @hookimpl
    def register_datasets(register):
        for name, channels, classes in [("plain", 1, None), ("rgb", 3, 10), ("five", 1, 5)]:
            register(Dataset(name=name, summary=f"fake {name} images (testing)", params=_FakeParams,
                             factory=source(channels, classes)))

    module = ModuleType("fake_sources")
    module.register_datasets = register_datasets
    return module


@pytest.mark.parametrize("name, message", [
    ("plain", r"^stacked labels each sample by the classes of its three channels; dataset 'plain' has no labels$"),
    ("rgb", r"^stacked stacks one-channel images .* dataset 'rgb' has samples of shape \(3, 8, 8\)$"),
    ("five", r"^stacked needs a dataset of exactly 10 classes \(three channels of 10 make its 1,000 modes\); "
             r"dataset 'five' has 5$"),
    ("stacked", r"^stacked cannot stack itself"),
])
def test_sources_it_cannot_stack_are_refused_in_one_line(name, message):
    reg = registry(("fake", _fake_plugin()))
    with pytest.raises(IncompatibleError, match=message):
        build(reg, source=name)


def test_without_the_registry_it_is_refused():
    with pytest.raises(IncompatibleError, match=r"needs the run's registry"):
        stacked.build(stacked.StackedParams(), DataContext())


def test_params_are_checked():
    with pytest.raises(ValueError, match="count"):
        stacked.StackedParams(count=0)


def _idx(array: np.ndarray) -> bytes:
    """The IDX format of yann.lecun.com/exdb/mnist: 0, 0, type 0x08 (ubyte), ndim; big-endian sizes; data."""
    return bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + \
        array.astype(np.uint8).tobytes()


def test_mnist_from_tiny_idx_files(tmp_path, monkeypatch):
    from gan_registry_torchvision_datasets import mnist

    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):  # nothing may download
        monkeypatch.setenv(key, "http://127.0.0.1:9")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in [("train", 40), ("t10k", 20)]:
        (raw / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(rng.integers(0, 256, (n, 28, 28)))))
        (raw / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(np.arange(n) % 10)))
    reg = registry(("mnist", mnist))
    data = build(reg, data_dir=str(tmp_path), source="mnist", count=50)
    assert data.sample_shape == (3, 28, 28)
    x, y = data.load(), data.load_labels()
    assert x.shape == (50, 3, 28, 28) and x.min() >= -1 and x.max() <= 1
    pool = data.reference["channel_source"].load()
    digit = which_images(x.reshape(-1, 1, 28, 28), pool).reshape(50, 3) % 10  # image i of the files is digit i % 10
    assert torch.equal(y, digit[:, 0] * 100 + digit[:, 1] * 10 + digit[:, 2])
    assert data.load_heldout().shape == (5, 3, 28, 28)
    assert str(tmp_path) in data.reference["channel_source_key"] and '"mnist"' in data.reference["channel_source_key"]
    assert build(reg, data_dir=str(tmp_path), source="mnist", size=32).sample_shape == (3, 32, 32)


def test_gan_describe_stacked():
    result = invoke_gan("describe", "stacked")
    assert result.exit_code == 0, result.output
    assert "1,000 modes" in result.output and "source" in result.output and "steps=5000" in result.output
