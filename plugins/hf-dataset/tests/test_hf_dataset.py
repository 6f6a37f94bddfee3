"""Dataset 'hf' on real `datasets` folders written with save_to_disk, in this process and through `gan run`.

The `gan` subprocesses find the plugin through its entry point: where the distribution is not installed (a checkout
tested before `pip install -e plugins/hf-dataset`), a dist-info folder naming that entry point is written to a
temporary folder put on PYTHONPATH, as pip would write one.
"""
from __future__ import annotations

import importlib.metadata
import os
import pickle
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Value
from PIL import Image as PILImage

import gan_registry_hf_dataset
from gan_registry import DataContext, UserError
from gan_registry.testing import isolated_registry, no_hang, reference_of, toy_plugin, train_briefly
from gan_registry_hf_dataset import HFParams, build
from gan_registry_hf_dataset._images import HFImages, decode, square

PLUGIN = Path(__file__).resolve().parents[1]
SIZE = 16
NAMES = ["red", "green", "blue"]
# (image, class, its colour at SIZE x SIZE): solid colours in several modes and sizes, resized or not
TRAIN = [
    (PILImage.new("RGB", (16, 16), (255, 0, 0)), 0, (255, 0, 0)),
    (PILImage.new("RGB", (40, 20), (0, 255, 0)), 1, (0, 255, 0)),
    (PILImage.new("L", (20, 30), 200), 2, (200, 200, 200)),
    (PILImage.new("RGBA", (24, 24), (0, 0, 255, 0)), 0, (255, 255, 255)),  # transparent: the white background
    (PILImage.new("RGB", (16, 48), (10, 20, 30)), 1, (10, 20, 30)),
]
TEST = [(PILImage.new("RGB", (16, 16), (1, 2, 3)), 2, (1, 2, 3)), (PILImage.new("RGB", (32, 32), (4, 5, 6)), 0, (4, 5, 6))]
FEATURES = Features({"img": Image(), "label": ClassLabel(names=NAMES), "note": Value("string")})


def quiet_save(data, path: Path) -> Path:
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    data.save_to_disk(str(path))
    return path


def split_of(rows, features=FEATURES, **extra) -> Dataset:
    columns = {"img": [image for image, _, _ in rows], "label": [label for _, label, _ in rows],
               "note": ["x"] * len(rows), **extra}
    return Dataset.from_dict(columns, features=features)


def colours(rows) -> torch.Tensor:
    return torch.tensor([rgb for _, _, rgb in rows], dtype=torch.uint8)[:, :, None, None].expand(-1, -1, SIZE, SIZE)


def cells(images) -> list[dict]:
    """The image cells as stored (encoded bytes), to damage one."""
    stored = Dataset.from_dict({"img": images}, features=Features({"img": Image()}))
    return stored.with_format("arrow")[:].column("img").to_pylist()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A DatasetDict with train and test splits, saved."""
    return quiet_save(DatasetDict(train=split_of(TRAIN), test=split_of(TEST)), tmp_path_factory.mktemp("hf") / "dict")


def source(data_dir, **params):
    return build(HFParams(**{"image": "img", **params}), DataContext(data_dir=str(data_dir), image_size=SIZE))


def test_pixels_labels_classes_and_the_heldout_split(saved):
    data = source(saved)
    assert data.sample_shape == (3, SIZE, SIZE) and data.value_range == (-1.0, 1.0)
    assert data.classes == tuple(NAMES)
    images = data.load()
    assert isinstance(images, torch.Tensor) and images.dtype == torch.uint8
    assert torch.equal(images, colours(TRAIN))  # solid colours: exact, resized or not
    assert torch.equal(data.load_labels(), torch.tensor([label for _, label, _ in TRAIN]))
    assert torch.equal(data.load_heldout(), colours(TEST))
    assert torch.equal(data.load_heldout_labels(), torch.tensor([label for _, label, _ in TEST]))
    assert data.load_labels().dtype == torch.int64

    gray = source(saved, channels=1, heldout="none")
    assert gray.sample_shape == (1, SIZE, SIZE) and gray.load_heldout is None and gray.load_heldout_labels is None
    luma = [round(0.299 * r + 0.587 * g + 0.114 * b) for _, _, (r, g, b) in TRAIN]
    assert (gray.load()[:, 0] - torch.tensor(luma)[:, None, None]).abs().max() <= 1


def test_the_shape_is_stated_without_decoding(saved):
    data = build(HFParams(image="img", size=24, channels=1), DataContext(data_dir=str(saved)))
    assert data.sample_shape == (1, 24, 24)
    assert build(HFParams(image="img", size=24), DataContext(data_dir=str(saved), image_size=8)).sample_shape == (3, 8, 8)
    with pytest.raises(ValueError):
        HFParams(channels=2)


def test_splits_and_labels_chosen(saved, tmp_path):
    on_test = source(saved, split="test")  # auto: test is trained on, and there is no validation
    assert torch.equal(on_test.load(), colours(TEST)) and on_test.load_heldout is None
    swapped = source(saved, split="test", heldout="train")
    assert torch.equal(swapped.load_heldout(), colours(TRAIN))
    unlabelled = source(saved, label="none")
    assert unlabelled.classes is None and unlabelled.load_labels is None and unlabelled.load_heldout_labels is None

    # a Dataset saved without splits, with no 'label' column (the default): unlabelled, no held-out split
    plain = quiet_save(Dataset.from_dict({"image": [image for image, _, _ in TRAIN]}, features=Features({"image": Image()})),
                       tmp_path / "plain")
    data = build(HFParams(), DataContext(data_dir=str(plain), image_size=SIZE))
    assert data.classes is None and data.load_heldout is None and torch.equal(data.load(), colours(TRAIN))

    # integer labels: the sorted distinct values are the classes; a held-out value outside them leaves it unlabelled
    ints = Features({"img": Image(), "digit": Value("int32")})
    images = [image for image, _, _ in TRAIN]
    folder = quiet_save(DatasetDict(
        train=Dataset.from_dict({"img": images, "digit": [7, 3, 7, 9, 3]}, features=ints),
        validation=Dataset.from_dict({"img": images[:2], "digit": [3, 5]}, features=ints),
    ), tmp_path / "ints")
    data = source(folder, label="digit")
    assert data.classes == ("3", "7", "9")
    assert data.load_labels().tolist() == [1, 0, 1, 2, 0] and len(data.load_heldout()) == 2
    assert data.load_heldout_labels() is None


def test_a_corrupt_row_is_skipped_with_one_warning_and_labels_stay_aligned(tmp_path):
    stored = cells([image for image, _, _ in TRAIN])
    stored[1] = {"bytes": b"not an image at all", "path": None}
    stored[3] = {"bytes": stored[3]["bytes"][:40], "path": None}  # a truncated PNG
    folder = quiet_save(split_of(list(zip(stored, [0, 1, 2, 0, 1], [None] * 5))), tmp_path / "corrupt")
    for in_memory in ("always", "never"):
        data = build(HFParams(image="img", in_memory=in_memory), DataContext(data_dir=str(folder), image_size=SIZE))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            images = data.load()
        ours = [str(w.message) for w in caught if "dataset 'hf'" in str(w.message)]
        assert len(ours) == 1 and "skipped 2 undecodable images of 5" in ours[0] and "rows 1, 3" in ours[0], ours
        assert "0x" not in ours[0] and "\n" not in ours[0]
        kept = [TRAIN[i] for i in (0, 2, 4)]
        assert torch.equal(torch.stack([images[i] for i in range(len(images))]), colours(kept))
        assert data.load_labels().tolist() == [0, 2, 1]


def test_streamed_equals_in_memory_and_pickles(saved):
    streamed = source(saved, in_memory="never").load()
    assert isinstance(streamed, HFImages) and len(streamed) == len(TRAIN)
    copy = pickle.loads(pickle.dumps(streamed))  # what a DataLoader worker gets under spawn
    assert torch.equal(torch.stack([copy[i] for i in range(len(copy))]), colours(TRAIN))
    assert isinstance(source(saved, max_memory_mb=0).load(), HFImages)  # auto: too large for the memory allowed
    assert torch.equal(source(saved, threads=3).load(), colours(TRAIN))


def test_metrics_take_the_heldout_split_as_their_reference(saved):
    registry = isolated_registry(gan_registry_hf_dataset)
    params = HFParams(image="img")
    data = build(params, DataContext(data_dir=str(saved), image_size=SIZE))
    reference = reference_of(registry.get("dataset", "hf"), params, data, str(saved), split="heldout")
    assert "held-out split, 2 images" in reference.describe
    assert torch.equal(reference.images, colours(TEST)) and reference.labels.tolist() == [2, 0]


def test_an_image_path_to_a_fifo_is_refused_unopened(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    with no_hang(60), pytest.raises(OSError, match="is not a regular file"):
        decode({"bytes": None, "path": str(tmp_path / "pipe.png")}, Image(), 3, square(SIZE))


def test_trains_streamed_through_the_engine(saved, tmp_path):
    registry = isolated_registry(toy_plugin, gan_registry_hf_dataset)
    run = train_briefly(tmp_path / "run", registry=registry, arch="toy", objective="toy", dataset="hf",
                        data_dir=str(saved), image_size=SIZE, batch_size=2, steps=2,
                        params={"dataset": {"image": "img", "in_memory": "never"}})
    assert (run.dir / "checkpoints" / "last.pt").is_file()


@pytest.fixture(scope="module")
def refusing(saved, tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("refusing")
    (tmp / "images").mkdir()
    PILImage.new("RGB", (8, 8)).save(tmp / "images" / "a.png")
    (tmp / "file.arrow").write_bytes(b"not arrow")
    damaged = tmp / "damaged"
    damaged.mkdir()
    (damaged / "dataset_dict.json").write_text("{not json")
    plain = quiet_save(split_of(TRAIN), tmp / "plain")
    unclassed = quiet_save(Dataset.from_dict({"img": [TRAIN[0][0]] * 2, "label": [0, -1], "name": ["a", "b"]},
                                             features=Features({"img": Image(), "label": ClassLabel(names=["a"]),
                                                                "name": Value("string")})), tmp / "unclassed")
    no_images = quiet_save(Dataset.from_dict({"path": ["a.png"], "label": [0]}), tmp / "no-images")
    broken = quiet_save(split_of(list(zip([{"bytes": b"junk", "path": None}] * 2, [0, 1], [None] * 2))), tmp / "broken")
    return {"saved": str(saved), "tmp": str(tmp), "plain": str(plain), "unclassed": str(unclassed),
            "no_images": str(no_images), "broken": str(broken), "damaged": str(damaged)}


# (what is wrong, --data-dir, params, a fragment of the one-line message)
REFUSED = [
    ("no --data-dir", None, {}, "dataset 'hf' needs --data-dir"),
    ("a folder that does not exist", "{tmp}/nowhere", {}, "{tmp}/nowhere does not exist"),
    ("a folder of image files", "{tmp}/images", {}, "is not a folder written by datasets' save_to_disk"),
    ("a file", "{tmp}/file.arrow", {}, "is not a folder; give the folder datasets' save_to_disk wrote"),
    ("damaged json", "{damaged}", {}, "could not be read as a datasets folder: "),
    ("a split that does not exist", "{saved}", {"split": "trian"}, "split 'trian' is not in {saved} (splits: train, test)"),
    ("a held-out split that does not exist", "{saved}", {"heldout": "valid"}, "held-out split 'valid' is not in"),
    ("the held-out split trained on", "{saved}", {"heldout": "train"}, "held-out split 'train' is the split trained on"),
    ("a split of a dataset without splits", "{plain}", {"split": "test"}, "holds one dataset without splits"),
    ("an image column that does not exist", "{saved}", {"image": "image"},
     "column 'image' is not in split 'train' of {saved} (columns: img, label, note; image columns: img)"),
    ("a column that holds no images", "{saved}", {"image": "label"},
     "column 'label' of split 'train' of {saved} holds ClassLabel(names=['red', 'green', 'blue']), not images"
     " (image columns: img)"),
    ("no image column at all", "{no_images}", {"image": "path"}, "holds Value('string'), not images (no image column;"),
    ("a label column that does not exist", "{saved}", {"label": "labels"}, "label column 'labels' is not in split"),
    ("a label column of text", "{saved}", {"label": "note"}, "label column 'note' of split 'train' of {saved} holds"
     " Value('string'), not classes"),
    ("rows without a class", "{unclassed}", {}, "has rows without a class (-1 or empty)"),
    ("no decodable image", "{broken}", {}, "no decodable images in {broken}: rows 0, 1 of 2 could not be decoded"),
]


@pytest.mark.parametrize("data_dir, params, fragment", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused_in_one_line(refusing, data_dir, params, fragment):
    context = DataContext(data_dir=data_dir and data_dir.format(**refusing), image_size=SIZE)
    with pytest.raises(UserError) as raised:
        build(HFParams(**{"image": "img", **params}), context).load()
    message = str(raised.value)
    assert fragment.format(**refusing) in message and "\n" not in message, message


@pytest.fixture(scope="module")
def gan_env(tmp_path_factory) -> dict[str, str]:
    """The environment a `gan` subprocess finds this plugin in: as it is where the distribution is installed,
    else with a dist-info folder declaring its entry point on PYTHONPATH (and the package's folder beside it)."""
    base = {"GAN_REGISTRY_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    try:
        importlib.metadata.distribution("gan-registry-hf-dataset")
        return {**os.environ, **base}
    except importlib.metadata.PackageNotFoundError:
        pass
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    site = tmp_path_factory.mktemp("site")
    info = site / f"gan_registry_hf_dataset-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    points = project["entry-points"]["gan_registry"]
    (info / "entry_points.txt").write_text("[gan_registry]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()))
    path = os.pathsep.join(p for p in (str(site), str(PLUGIN), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, **base, "PYTHONPATH": path}


def gan(env, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gan_registry", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def the_error(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 2 and "Traceback" not in out + err, (out, err)
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning:")]  # other plugins' notes
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


def test_gan_run_conditional_and_refusals_through_the_command_line(gan_env, tmp_path):
    rng = np.random.default_rng(0)
    images = [PILImage.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(40)]
    quiet_save(Dataset.from_dict({"img": images, "label": [i % 2 for i in range(40)]},
                                 features=Features({"img": Image(), "label": ClassLabel(names=["a", "b"])})),
               tmp_path / "hf")
    # two processes at once: most of each one's time is importing torch
    training = gan(gan_env, "run", "--arch", "dcgan", "--objective", "gan", "--dataset", "hf", "--data-dir",
                   tmp_path / "hf", "-p", "dataset.image=img", "-p", "dataset.label=label", "--conditional", "--steps",
                   "3", "--batch-size", "8", "--seed", "0", "--out", tmp_path / "hfrun", "--no-progress")
    wrong_column = gan(gan_env, "run", "--arch", "dcgan", "--objective", "gan", "--dataset", "hf", "--data-dir",
                       tmp_path / "hf", "-p", "dataset.image=label", "--out", tmp_path / "wrong")
    out, err = training.communicate(timeout=600)
    assert training.returncode == 0, out + err
    assert (tmp_path / "hfrun" / "checkpoints" / "last.pt").is_file() and "Traceback" not in err
    error = the_error(wrong_column)
    assert "column 'label' of " in error and "not images (image columns: img)" in error
    assert not (tmp_path / "wrong").exists()


def test_a_name_that_is_no_folder_is_loaded_from_the_hub(tmp_path, monkeypatch):
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets: fail at once
    monkeypatch.chdir(tmp_path)
    # the engine hands --data-dir over as an absolute path: the name is what it is below the working directory
    with pytest.raises(UserError) as raised:
        build(HFParams(), DataContext(data_dir=str(tmp_path / "nobody" / "no-such-dataset")))
    message = str(raised.value)
    assert message.startswith("cannot load 'nobody/no-such-dataset' from the Hugging Face hub (there is no folder")
    assert message.endswith("(offline? save it with save_to_disk and give its folder)") and "\n" not in message


def test_importing_the_plugin_imports_neither_torch_nor_datasets():
    code = ("import sys, gan_registry_hf_dataset; heavy = {'torch', 'datasets', 'PIL'} & set(sys.modules);"
            " assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGIN), os.environ.get("PYTHONPATH", "")])})
    assert done.returncode == 0, done.stderr
