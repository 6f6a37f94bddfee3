"""Labels through the dataset contract: datasets that have them say so, batches carry them, aligned."""
from __future__ import annotations

import types

import pytest
import torch

from gan_registry import Dataset, DataSource, Objective, Phase, Run, hookimpl, to_values
from gan_registry.data import Batches
from gan_registry.testing import build, isolated_registry, toy_plugin


def test_digits_have_labels_matching_their_images():
    from sklearn.datasets import load_digits

    data = build(arch="mlp", objective="gan", dataset="digits", image_size=8).data
    assert data.classes == tuple("0123456789")
    labels, images = data.load_labels(), data.load()
    assert labels.dtype == torch.int64 and len(labels) == len(images) == 1617
    expected = torch.as_tensor(load_digits().target)[torch.arange(1797) % 10 != 0]
    assert torch.equal(labels, expected) and len(data.load_heldout_labels()) == len(data.load_heldout()) == 180


def test_unlabelled_data_has_none():
    data = build(arch="mlp", objective="gan", dataset="gaussians").data
    assert data.classes is None and data.load_labels is None


class _Indexed(torch.utils.data.Dataset):
    def __len__(self):
        return 50

    def __getitem__(self, i):
        return torch.full((2,), float(i))


@pytest.mark.parametrize("streamed", [False, True])
def test_batches_hand_out_the_labels_of_their_samples(streamed):
    source = _Indexed() if streamed else torch.arange(50.0)[:, None].repeat(1, 2)
    labels = torch.arange(50) * 10
    batches = Batches(source, 8, seed=3, device=torch.device("cpu"), workers=0, labels=labels)
    for _ in range(14):  # over two epochs of 6 batches, and into a third
        real = batches.next()
        assert torch.equal(batches.last_labels, real[:, 0].long() * 10)
    unlabelled = Batches(source, 8, seed=3, device=torch.device("cpu"), workers=0)
    unlabelled.next()
    assert unlabelled.last_labels is None


seen: list = []


class _Recording:
    def __init__(self, params):
        pass

    def phases(self, models):
        from torch.optim import Adam

        def loss(models, batch):
            seen.append((batch.real[:, 0].round().long(), batch.labels))
            return models.discriminator(batch.real).mean()

        return [Phase(name="d", loss=loss, optimizer=Adam(models.discriminator.parameters()))]


def _labelled(params, context):
    def load():
        return (torch.arange(64) % 4).float()[:, None].repeat(1, 2)

    return DataSource(sample_shape=(2,), value_range=None, load=load, classes=("a", "b", "c", "d"),
                      load_labels=lambda: torch.arange(64) % 4)


labelled_plugin = types.ModuleType("labelled_plugin")
labelled_plugin.register_datasets = hookimpl(lambda register: register(
    Dataset(name="labelled", summary="points whose value is their label", factory=_labelled)))
labelled_plugin.register_objectives = hookimpl(lambda register: register(
    Objective(name="recording", summary="records what its loss receives", factory=_Recording)))


def test_a_phase_receives_the_labels_of_its_real_batch(tmp_path):
    seen.clear()
    registry = isolated_registry(toy_plugin, labelled_plugin)
    Run.new("toy", "recording", "labelled", registry=registry, out=tmp_path / "run", steps=10, batch_size=8,
            device="cpu").train()
    assert len(seen) == 10
    for values, labels in seen:
        assert labels is not None and torch.equal(values, labels)


def test_image_folders_take_labels_from_subfolders(tmp_path):
    from PIL import Image

    for cls, shade in (("cats", 30), ("dogs", 200)):
        (tmp_path / "pets" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), shade + i).save(tmp_path / "pets" / cls / f"{i}.png")
    (tmp_path / "flat").mkdir()
    Image.new("L", (8, 8), 9).save(tmp_path / "flat" / "one.png")
    data = build(arch="mlp", objective="gan", dataset="folder", data_dir=str(tmp_path / "pets"), image_size=8,
                 params={"dataset": {"channels": 1}}).data
    assert data.classes == ("cats", "dogs")
    images, labels = data.load(), data.load_labels()
    assert labels.tolist() == [0, 0, 0, 1, 1, 1] and torch.equal((to_values(images, data.value_range).mean((1, 2, 3)) > 0).long(), labels)
    flat = build(arch="mlp", objective="gan", dataset="folder", data_dir=str(tmp_path / "flat"), image_size=8).data
    assert flat.classes is None and flat.load_labels is None
