"""Dataset 'folder' on a folder of real image files written with PIL, and through `gan run`."""
from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_registry import DataContext, UserError
from gan_registry.testing import run_gan
from gan_registry.testing import no_hang as no_hang_here
from gan_registry_folder_dataset import FolderParams, build, class_folders
from gan_registry import to_values
from gan_registry_folder_dataset._images import FolderImages, load

SIZE = 16
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)

# The readable images in sorted path order, and the colour of the solid ones (None: not solid).
GOOD = [
    ("a_center.png", None),
    ("b_tall.png", None),
    ("c_gray.png", (200, 200, 200)),
    ("cats/j.PNG", (0, 255, 255)),
    ("cats/k.jpeg", (128, 128, 128)),
    ("d_rgba.png", (127, 127, 255)),  # (0, 0, 255) at alpha 128, composited on white
    ("e_palette.png", (10, 200, 30)),
    ("f_photo.jpg", None),
    ("g_wide.jpg", (200, 100, 50)),
    ("h.WEBP", (5, 6, 7)),
    ("i.bmp", (250, 0, 250)),
]
LOSSY = {"cats/k.jpeg", "g_wide.jpg"}
BAD = ["corrupt.png", "truncated.jpg"]


def unit(rgb) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float32) / 127.5 - 1


def smooth_noise(width: int, height: int, seed: int) -> Image.Image:
    small = np.random.default_rng(seed).integers(0, 256, (max(height // 8, 1), max(width // 8, 1), 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.BILINEAR)


def write_folder(root: Path) -> Path:
    (root / "cats").mkdir(parents=True)
    # 48x16, only the centre 16x16 red: at size 16 nothing is resized and the crop must be all red.
    wide = np.zeros((16, 48, 3), np.uint8)
    wide[:] = BLUE
    wide[:, 16:32] = RED
    Image.fromarray(wide).save(root / "a_center.png")
    # 32 wide, 96 tall, rows 32..63 red: shorter side 32 -> 16 (16x48), the crop's rows are the red band.
    tall = np.zeros((96, 32, 3), np.uint8)
    tall[:] = GREEN
    tall[32:64] = RED
    Image.fromarray(tall).save(root / "b_tall.png")
    Image.new("L", (20, 30), 200).save(root / "c_gray.png")
    Image.new("RGB", (40, 17), (0, 255, 255)).save(root / "cats" / "j.PNG")
    Image.new("RGB", (23, 64), (128, 128, 128)).save(root / "cats" / "k.jpeg", quality=95)
    Image.new("RGBA", (24, 24), (0, 0, 255, 128)).save(root / "d_rgba.png")
    palette = Image.new("P", (30, 20), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0, 0, 0] * 254)
    palette.save(root / "e_palette.png")
    smooth_noise(640, 480, seed=1).save(root / "f_photo.jpg", quality=90)
    Image.new("RGB", (100, 40), (200, 100, 50)).save(root / "g_wide.jpg", quality=95)
    Image.new("RGB", (18, 18), (5, 6, 7)).save(root / "h.WEBP", lossless=True)
    Image.new("RGB", (17, 25), (250, 0, 250)).save(root / "i.bmp")
    (root / "corrupt.png").write_bytes(np.random.default_rng(2).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    jpeg = io.BytesIO()
    smooth_noise(200, 150, seed=3).save(jpeg, "JPEG", quality=90)
    (root / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    (root / "notes.txt").write_text("not an image\n")
    return root


def load_quietly(root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(root, size=SIZE, **kwargs)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def stored(folder) -> torch.Tensor:
    return load_quietly(folder, in_memory="always")


@pytest.fixture(scope="module")
def images(stored) -> torch.Tensor:
    return to_values(stored, (-1.0, 1.0))  # what the engine hands the networks


def test_kept_as_uint8_a_quarter_of_float32(stored):
    assert isinstance(stored, torch.Tensor) and stored.dtype == torch.uint8
    assert stored.shape == (len(GOOD), 3, SIZE, SIZE)


def test_shapes_range_and_sorted_order(images):
    assert isinstance(images, torch.Tensor)
    assert images.shape == (len(GOOD), 3, SIZE, SIZE) and images.dtype == torch.float32
    assert images.min() == -1.0 and images.max() == 1.0
    for index, (name, rgb) in enumerate(GOOD):
        if rgb is None:
            continue
        tolerance = 4 / 127.5 if name in LOSSY else 1.01 / 127.5
        got = images[index].mean(dim=(1, 2))
        assert torch.allclose(got, unit(rgb), atol=tolerance), (name, got, unit(rgb))
        assert images[index].std(dim=(1, 2)).max() < tolerance, name  # solid stays solid


def test_centre_crop_takes_the_centre(images):
    red = unit(RED)[:, None, None]
    assert torch.equal(images[0], red.expand(3, SIZE, SIZE))  # no resize: exact
    tall = images[1]
    assert torch.allclose(tall[:, 1:-1], red.expand(3, SIZE - 2, SIZE), atol=1e-6)
    # the edge rows blend a little of the green border in, but are mostly red
    for row in (0, SIZE - 1):
        assert (tall[0, row] > 0.5).all() and (tall[1, row] < 0).all(), tall[:, row]


def test_grayscale(folder):
    gray = to_values(load_quietly(folder, in_memory="always", channels=1), (-1.0, 1.0))
    assert gray.shape == (len(GOOD), 1, SIZE, SIZE)
    names = [name for name, _ in GOOD]
    assert torch.allclose(gray[names.index("c_gray.png")], unit(200), atol=1e-6)
    # (250, 0, 250): luma 0.299*250 + 0.114*250 = 103.25, not one of the channels
    assert torch.allclose(gray[names.index("i.bmp")], unit(103), atol=1.01 / 127.5)
    assert torch.allclose(gray[names.index("e_palette.png")], unit(0.299 * 10 + 0.587 * 200 + 0.114 * 30), atol=1.01 / 127.5)


def test_sixteen_bit_and_exif_orientation(tmp_path):
    Image.fromarray(np.full((20, 20), 40000, np.uint16)).save(tmp_path / "a_16bit.png")  # scaled, not clipped
    stored = np.zeros((20, 40, 3), np.uint8)  # stored landscape: left half red, right half blue
    stored[:, :20], stored[:, 20:] = RED, BLUE
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": upright it is portrait, red on top
    Image.fromarray(stored).save(tmp_path / "b_rotated.png", exif=exif)
    gray, rotated = to_values(load(tmp_path, size=SIZE, in_memory="always"), (-1.0, 1.0))
    assert torch.allclose(gray, unit(40000 // 256), atol=1e-6)
    assert torch.allclose(rotated[:, : SIZE // 2 - 1], unit(RED)[:, None, None].expand(3, SIZE // 2 - 1, SIZE), atol=1e-6)
    assert torch.allclose(rotated[:, SIZE // 2 + 1 :], unit(BLUE)[:, None, None].expand(3, SIZE // 2 - 1, SIZE), atol=1e-6)


def test_one_warning_names_the_unreadable_files(folder):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = load(folder, size=SIZE, in_memory="always")
    ours = [w for w in caught if "dataset 'folder'" in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    message = str(ours[0].message)
    assert "skipped 2 unreadable" in message
    assert all(name in message for name in BAD), message
    assert "notes.txt" not in message
    assert len(images) == len(GOOD)


def test_no_usable_image_is_a_user_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(UserError) as raised:
        load(empty, size=SIZE)
    message = str(raised.value)
    assert str(empty) in message and ".png" in message and ".jpg" in message and "\n" not in message

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(UserError, match="could not be read"):
        load(broken, size=SIZE)

    with pytest.raises(UserError, match="does not exist"):
        load(tmp_path / "missing", size=SIZE)
    with pytest.raises(UserError, match="--data-dir"):
        build(FolderParams(), DataContext(data_dir=None))


def test_source_shape_is_known_without_loading(tmp_path):
    missing = str(tmp_path / "not-there-yet")
    source = build(FolderParams(), DataContext(data_dir=missing))
    assert source.sample_shape == (3, 64, 64) and source.value_range == (-1.0, 1.0)
    source = build(FolderParams(channels=1, size=32), DataContext(data_dir=missing, image_size=24))
    assert source.sample_shape == (1, 24, 24)
    with pytest.raises(ValueError):
        FolderParams(channels=2)


def test_streamed_equals_in_memory(folder, stored):
    source = build(FolderParams(in_memory="never"), DataContext(data_dir=str(folder), image_size=SIZE))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streamed = source.load()
    assert isinstance(streamed, torch.utils.data.Dataset) and not isinstance(streamed, torch.Tensor)
    assert len(streamed) == len(GOOD)
    assert torch.equal(torch.stack([streamed[i] for i in range(len(streamed))]), stored)
    copy = pickle.loads(pickle.dumps(streamed))  # what a DataLoader worker gets under spawn
    assert isinstance(copy, FolderImages) and torch.equal(copy[5], stored[5])

    # auto: in memory when N*C*H*W bytes (uint8) fit in max_memory_mb, streamed otherwise
    assert isinstance(load_quietly(folder, max_memory_mb=0), FolderImages)
    assert torch.equal(load_quietly(folder, threads=1), stored)


def gan(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    return subprocess.Popen(
        [sys.executable, "-m", "gan_registry", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def test_gan_run_in_memory_and_streamed(folder, tmp_path):
    def run(data_dir, out: str, *extra: str) -> subprocess.Popen:
        return gan("run", "--arch", "mlp", "--objective", "gan", "--dataset", "folder", "--data-dir", str(data_dir),
                   "--image-size", "16", "--steps", "5", "--batch-size", "4", "--out", str(tmp_path / out),
                   "--no-progress", *extra)

    # three processes at once: most of each one's time is importing torch
    runs = {"memory": run(folder, "memory"), "streamed": run(folder, "streamed", "-p", "dataset.in_memory=never")}
    missing = run("/nonexistent", "missing")
    for name, process in runs.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, (name, out, err)
        assert (tmp_path / name / "checkpoints" / "last.pt").is_file()
        assert "skipped 2 unreadable" in err, err
    out, err = missing.communicate(timeout=120)
    assert missing.returncode == 2, (out, err)
    assert "Traceback" not in out + err
    # one line; other installed plugins may add their own "warning: ..." lines
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and "/nonexistent" in lines[0] and "does not exist" in lines[0], err
    assert not (tmp_path / "missing" / "checkpoints").exists()


@pytest.fixture
def no_hang():
    with no_hang_here():
        yield


def test_fifo_and_device_named_like_images_are_skipped_unopened(tmp_path, no_hang):
    for i in range(2):
        Image.new("RGB", (16, 16), (i, i, i)).save(tmp_path / f"{i}.png")
    os.mkfifo(tmp_path / "zz_pipe.png")
    (tmp_path / "zzz_null.png").symlink_to(os.devnull)
    assert class_folders(str(tmp_path)) is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = load(tmp_path, size=SIZE, in_memory="always", threads=1)
    assert len(images) == 2
    message = " ".join(str(w.message) for w in caught if "dataset 'folder'" in str(w.message))
    assert "skipped 2 unreadable image files of 4" in message and "zz_pipe.png, zzz_null.png" in message, message
    assert "(first: not a regular file (a FIFO))" in message, message
    # a file that became a FIFO after the listing: refused when its batch is drawn, not waited on
    with pytest.raises(OSError, match=r"zz_pipe\.png could not be read .*: not a regular file \(a FIFO\)$"):
        FolderImages([tmp_path / "zz_pipe.png"], SIZE, 3)[0]


def test_gan_run_trains_past_a_fifo_named_like_an_image(tmp_path):
    data = tmp_path / "fifo"
    data.mkdir()
    for i in range(8):
        Image.new("RGB", (16, 16), (i, i, i)).save(data / f"{i:02d}.png")
    os.mkfifo(data / "zz_pipe.png")
    done = run_gan("run", "--arch", "dcgan", "--objective", "gan", "--dataset", "folder", "--data-dir", data,
                   "--image-size", "16", "--steps", "2", "--batch-size", "4", "--out", tmp_path / "run", "--no-progress",
                   timeout=300)  # a hang on the FIFO would end here; training itself takes seconds
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "skipped 1 unreadable image file of 9" in done.stderr and "not a regular file (a FIFO)" in done.stderr
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
