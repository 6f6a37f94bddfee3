"""Dataset 'packed' and `gan data pack`: real folders of PNGs packed by the real command, read back, trained on."""
from __future__ import annotations

import io
import itertools
import json
import re
import shutil
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_registry import DataContext, UserError, to_values
from gan_registry.testing import invoke_gan, run_gan
from gan_registry_packed_dataset import PackedParams, build

SIZE = 16
PER_CLASS = 15


def write_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(("cats", "dogs")):
        (root / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
            pixels[0, 0] = (c, i, 7)  # a mark that says which file each sample came from
            Image.fromarray(pixels).save(root / name / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    root = tmp_path_factory.mktemp("packed")
    images = write_folder(root / "images")
    done = run_gan("data", "pack", "--dataset", "folder", "--data-dir", images, "--image-size", SIZE,
                   "--out", root / "array", "--no-progress")  # the real command once; in-process after
    assert done.returncode == 0, done.stderr
    assert f"packed {2 * PER_CLASS} images" in done.stdout
    done = invoke_gan("data", "pack", "--dataset", "folder", "--data-dir", images, "--image-size", SIZE,
                      "--format", "shards", "--shard-size", "7", "--out", root / "shards", "--no-progress")
    assert done.exit_code == 0, done.output
    return root


def source(folder: Path, **params):
    return build(PackedParams(**params), DataContext(data_dir=str(folder)))


def folder_pixels(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    files = sorted((root / "images").rglob("*.png"))
    pixels = torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB")).copy()).permute(2, 0, 1)
                          for f in files])
    return pixels, torch.tensor([0 if f.parent.name == "cats" else 1 for f in files])


def read_all(stream, **where):
    return [(x, y) for x, y in stream.read(**{"seed": 0, "epoch": 0, "rank": 0, "world": 1, **where})]


def test_array_is_the_folders_pixels_memory_mapped(packed):
    header = json.loads((packed / "array" / "header.json").read_text())
    assert header["images"] == {"count": 2 * PER_CLASS, "channels": 3, "resolution": SIZE, "dtype": "uint8"}
    assert header["classes"] == ["cats", "dogs"] and header["class_counts"] == [PER_CLASS, PER_CLASS]
    assert header["source"]["dataset"] == "folder" and header["layout"] == "array"
    data = source(packed / "array")
    images, labels = data.load(), data.load_labels()
    assert images.dtype == torch.uint8
    pixels, folder_labels = folder_pixels(packed)
    assert torch.equal(images, pixels) and torch.equal(labels, folder_labels)  # lossless, labels aligned
    assert data.sample_shape == (3, SIZE, SIZE) and data.classes == ("cats", "dogs")
    assert isinstance(np.load(packed / "array" / "images.npy", mmap_mode="r"), np.memmap)


def test_shards_hold_every_image_once_and_each_process_reads_its_own(packed):
    header = json.loads((packed / "shards" / "header.json").read_text())
    assert [s["count"] for s in header["shards"]] == [7, 7, 7, 7, 2]
    stream = source(packed / "shards").load()
    pixels, labels = folder_pixels(packed)
    marks = {(int(x[0, 0, 0]), int(x[1, 0, 0])) for x in pixels}
    epoch = read_all(stream)
    assert len(epoch) == 2 * PER_CLASS and {(int(x[0, 0, 0]), int(x[1, 0, 0])) for x, _ in epoch} == marks
    assert all(int(x[0, 0, 0]) == y for x, y in epoch)  # each label came with its image
    # two processes: disjoint shards, together all of them; an epoch lasts what the fewer-filled one holds
    ranks = [read_all(stream, rank=r, world=2) for r in (0, 1)]
    assert sum(len(r) for r in ranks) == 2 * PER_CLASS
    seen = [{(int(x[0, 0, 0]), int(x[1, 0, 0])) for x, _ in r} for r in ranks]
    assert not seen[0] & seen[1]
    assert stream.per_process(2) == 7 + 2 and stream.per_process(1) == 2 * PER_CLASS
    with pytest.raises(UserError, match="5 shard"):
        stream.per_process(6)


def test_stream_order_is_the_seeds_and_the_epochs_and_skip_resumes_it(packed):
    stream = source(packed / "shards", shuffle_buffer=8).load()
    first = [x for x, _ in read_all(stream)]
    assert all(torch.equal(a, b) for a, b in zip(first, [x for x, _ in read_all(stream)]))  # the same again
    other_epoch = [x for x, _ in read_all(stream, epoch=1)]
    assert not all(torch.equal(a, b) for a, b in zip(first, other_epoch))
    resumed = [x for x, _ in read_all(stream, skip=11)]
    assert len(resumed) == len(first) - 11 and all(torch.equal(a, b) for a, b in zip(first[11:], resumed))


def test_runs_train_on_both_and_a_resumed_stream_is_bit_exact(packed, tmp_path):
    def train(data: str, out: Path, steps: int, *extra: str):
        done = invoke_gan("run", "--arch", "dcgan", "--objective", "gan", "--dataset", "packed", "--data-dir",
                          packed / data, "--image-size", SIZE, "--steps", steps, "--batch-size", 4, "--seed", 3,
                          "--out", out, "--no-progress", *extra)
        assert done.exit_code == 0, done.output

    train("array", tmp_path / "array", 2, "--conditional")
    train("shards", tmp_path / "full", 9)  # 7 batches an epoch: the resume is mid-epoch, the end in the next
    train("shards", tmp_path / "half", 4)
    resumed = invoke_gan("resume", tmp_path / "half", "--steps", 9, "--no-progress")
    assert resumed.exit_code == 0, resumed.output
    full, half = (torch.load(tmp_path / r / "checkpoints" / "last.pt", weights_only=True) for r in ("full", "half"))
    assert full["models"].keys() == half["models"].keys()
    assert all(torch.equal(value, half["models"][key]) for key, value in full["models"].items())


def refusal(*args) -> str:
    done = run_gan(*map(str, args))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def train_on(folder: Path, tmp_path: Path, *params: str) -> str:
    """What `gan run` says of the data, in one line with exit 2 (one subprocess: the others read in-process)."""
    return refusal("run", "--arch", "mlp", "--objective", "gan", "--dataset", "packed", "--data-dir", folder,
                   "--steps", 8, "--batch-size", 4, "--out", tmp_path / "run", "--no-progress",
                   *itertools.chain.from_iterable(("-p", p) for p in params))


def reading(folder: Path, **params) -> str:
    """The UserError that building, loading or reading an epoch of `folder` raises."""
    with pytest.raises(UserError) as raised:
        loaded = source(folder, **params).load()
        if hasattr(loaded, "read"):
            list(loaded.read(seed=0, epoch=0, rank=0, world=1))
    return str(raised.value)


def test_a_header_that_lies_is_refused(packed, tmp_path):
    lie = tmp_path / "lie"
    shutil.copytree(packed / "array", lie)
    header = json.loads((lie / "header.json").read_text())
    header["images"]["count"], header["class_counts"] = 10**7, [10**7 - PER_CLASS, PER_CLASS]
    (lie / "header.json").write_text(json.dumps(header))
    assert "holds uint8 images of shape (30, 3, 16, 16); header.json states uint8 (10000000" in train_on(lie, tmp_path)
    header["images"]["count"] = 31
    (lie / "header.json").write_text(json.dumps(header))
    assert "class counts add up to 10,000,000 images, but it states 31" in reading(lie)
    header = json.loads((packed / "array" / "header.json").read_text())
    header["files"][0]["name"] = "../../etc/passwd"
    (lie / "header.json").write_text(json.dumps(header))
    assert "not the name of a file beside the header" in reading(lie)
    (lie / "header.json").write_text("{not json")
    assert "is not JSON" in reading(lie)


def test_a_truncated_or_foreign_shard_is_refused(packed, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(packed / "shards", broken)
    data = (broken / "shard-000001.tar").read_bytes()
    (broken / "shard-000001.tar").write_bytes(data[: len(data) // 2 + 100])
    assert "truncated, or not the file that was packed" in reading(broken)
    # not checked up front (a URL is not): read, the stream stops at the cut
    assert re.search(r"could not be read after \d samples|holds [0-6] samples; header.json states 7",
                     reading(broken, verify="none"))
    cut = data[: 512 * (len(data) // 1024)]  # whole 512-byte blocks: the tar ends cleanly, samples short
    (broken / "shard-000001.tar").write_bytes(cut)
    assert re.search(r"holds [0-6] samples; header.json states 7|could not be read after \d samples",
                     reading(broken, verify="none"))
    # a shard of another pack of the same images: same size, other samples' keys
    other = tmp_path / "other"
    done = invoke_gan("data", "pack", "--dataset", "folder", "--data-dir", packed / "images", "--image-size", SIZE,
                      "--format", "shards", "--shard-size", "7", "--out", other, "--no-progress")
    assert done.exit_code == 0, done.output
    shutil.copy(other / "shard-000001.tar", broken / "shard-000001.tar")
    assert "a shard of another dataset mixed in" in reading(broken, verify="none")
    assert "its sha256 differs" in reading(broken, verify="sha256")


def test_a_crafted_member_path_is_never_written(packed, tmp_path):
    crafted = tmp_path / "crafted"
    shutil.copytree(packed / "shards", crafted)
    png = io.BytesIO()
    Image.new("RGB", (SIZE, SIZE)).save(png, format="PNG")
    with tarfile.open(crafted / "shard-000000.tar", "w") as tar:
        for name in ("../escaped.png", "/tmp/absolute-escape.png"):
            info = tarfile.TarInfo(name)
            info.size = len(png.getvalue())
            tar.addfile(info, io.BytesIO(png.getvalue()))
    assert "not a sample of this packed dataset" in reading(crafted, verify="none")
    assert not (tmp_path / "escaped.png").exists() and not Path("/tmp/absolute-escape.png").exists()


def packing_refused(*args) -> str:
    done = invoke_gan("data", "pack", *args)
    assert done.exit_code == 2 and done.output.count("Error:") == 1, done.output
    return done.output


def test_pack_refusals(packed, tmp_path):
    assert "exists and is not an empty folder" in packing_refused("--dataset", "folder", "--data-dir",
                                                                  packed / "images", "--out", packed / "array")
    assert "square images of 1 or 3 channels" in packing_refused("--dataset", "gaussians", "--out",
                                                                 tmp_path / "points")
    with pytest.raises(UserError, match="packed at 16 px, not --image-size 32"):
        build(PackedParams(), DataContext(data_dir=str(packed / "array"), image_size=32))
    assert not list(tmp_path.glob(".points.packing-*"))  # a refused pack leaves nothing behind


def test_digits_pack_losslessly_enough(tmp_path):
    """A float dataset is quantised to uint8: within half a step of 255 of its values."""
    done = invoke_gan("data", "pack", "--dataset", "digits", "--out", tmp_path / "digits", "--no-progress")
    assert done.exit_code == 0, done.output
    from gan_registry.testing import load_registry

    registry = load_registry()
    digits = registry.get("dataset", "digits")
    original = digits.factory(digits.params(), DataContext(registry=registry))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        packed = source(tmp_path / "digits")
        restored = to_values(packed.load(), (-1.0, 1.0))
    assert torch.allclose(restored, original.load(), atol=1 / 255 + 1e-6)
    assert torch.equal(packed.load_labels(), original.load_labels())
