"""The torchvision datasets on tiny files written in the real formats (IDX, CIFAR's pickled batches).

Nothing here downloads: the subprocesses point their proxy at a closed local port, so the
download attempt fails at once whether or not this machine has network.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_registry import DataContext, UserError
from gan_registry.testing import isolated_registry
from gan_registry.testing import no_hang as no_hang_here
from gan_registry_torchvision_datasets import _common, cifar10, fashion_mnist, mnist

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


def file_member(name: str, data: bytes = b"x\n") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special_member(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, None


def write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    """A tar.gz of the members exactly as given: tarfile writes any name and type it is handed."""
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, None if data is None else io.BytesIO(data))
    return path


def escaping_archive(data_dir: Path, outside: Path) -> Path:
    """The acceptance check's cifar-10-python.tar.gz: '..', an absolute name, and a link a later member goes through."""
    data_dir.mkdir(parents=True)
    return write_tar(data_dir / "cifar-10-python.tar.gz", [
        file_member("../../ESCAPED_REL"), file_member(str(outside / "ESCAPED_ABS")),
        special_member("cifar-10-batches-py", tarfile.SYMTYPE, str(outside)),
        file_member("cifar-10-batches-py/ESCAPED_LINK"),
    ])


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
    escaping_archive(root / "evil" / "sub", outside=root)
    started = {
        "missing": start_gan(*common, "--data-dir", root / "empty", "--out", root / "run-missing", cwd=root),
        "tiny": start_gan(*common, "--data-dir", root / "data", "--out", root / "run", cwd=root),
        "escape": start_gan(*common, "--dataset", "cifar10", "--data-dir", root / "evil" / "sub", "-p",
                            "dataset.download=false", "--out", root / "run-escape", cwd=root),
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


@pytest.fixture
def no_hang():
    with no_hang_here():
        yield


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

    write_idx(tmp_path / "flat", "MNIST", gzipped=False)  # images stored as one 2-D array: magic number 2050
    (tmp_path / "flat" / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((40, 784))))
    with pytest.raises(UserError, match=r"^mnist: .*/train-images-idx3-ubyte is not an IDX file of images \(it does"
                                        r" not start with the magic number 2051\)"):
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


def test_gan_run_refuses_an_archive_that_writes_outside_the_data_folder(gan_runs):
    root, done = gan_runs
    returncode, stdout, stderr = done["escape"]
    assert returncode == 2, stdout + stderr
    output = (stdout + stderr).strip()
    assert "Traceback" not in output and output.count("\n") == 0, output
    archive = root / "evil" / "sub" / "cifar-10-python.tar.gz"
    assert output == (f"Error: cifar10: refused {archive}: member '../../ESCAPED_REL' would be written outside"
                      f" {archive.parent}; nothing was extracted")
    assert not list(root.rglob("ESCAPED*"))
    assert os.listdir(archive.parent) == [archive.name]  # no half-unpacked folder either


def cifar_batch_bytes() -> bytes:
    return pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, protocol=2)


@pytest.mark.parametrize("case", ["relative", "absolute", "dotdot", "symlink", "hardlink", "fifo", "device"])
def test_crafted_cifar_archive_is_refused_whole(tmp_path, offline, case):
    data_dir = tmp_path / "d" / "sub"
    data_dir.mkdir(parents=True)
    outside = str(tmp_path / "ESCAPED")
    crafted, refusal = {
        "relative": ([file_member("../../ESCAPED")], "member '../../ESCAPED' would be written outside " + str(data_dir)),
        "absolute": ([file_member(outside)], f"member '{outside}' has an absolute name"),
        "dotdot": ([file_member("cifar-10-batches-py/../ESCAPED")],
                   "member 'cifar-10-batches-py/../ESCAPED' has '..' in its name"),
        "symlink": ([special_member("cifar-10-batches-py", tarfile.SYMTYPE, str(tmp_path)),
                     file_member("cifar-10-batches-py/ESCAPED")],
                    f"member 'cifar-10-batches-py' is a symbolic link to '{tmp_path}'"),
        "hardlink": ([special_member("cifar-10-batches-py/test_batch", tarfile.LNKTYPE, outside)],
                     f"member 'cifar-10-batches-py/test_batch' is a hard link to '{outside}'"),
        "fifo": ([special_member("cifar-10-batches-py/test_batch", tarfile.FIFOTYPE)],
                 "member 'cifar-10-batches-py/test_batch' is a FIFO, not a file or folder"),
        "device": ([special_member("cifar-10-batches-py/test_batch", tarfile.CHRTYPE)],
                   "member 'cifar-10-batches-py/test_batch' is a device file, not a file or folder"),
    }[case]
    # a genuine member first: every member is checked before any is written
    archive = write_tar(data_dir / "cifar-10-python.tar.gz",
                        [file_member("cifar-10-batches-py/data_batch_1", cifar_batch_bytes()), *crafted])
    with pytest.raises(UserError) as raised:
        source("cifar10", data_dir, download=False).load()
    assert str(raised.value) == f"cifar10: refused {archive}: {refusal}; nothing was extracted"
    assert not list(tmp_path.rglob("ESCAPED*"))
    assert os.listdir(data_dir) == [archive.name]


def test_archive_bombs_are_refused_before_unpacking(tmp_path, offline):
    (tmp_path / "many").mkdir()
    many = write_tar(tmp_path / "many" / "cifar-10-python.tar.gz",
                     [special_member(f"d{i}", tarfile.DIRTYPE) for i in range(_common.TAR_MAX_MEMBERS + 1)])
    with pytest.raises(UserError, match=r"^cifar10: refused .*: it holds more than 10,000 members; nothing was"):
        source("cifar10", many.parent, download=False).load()
    assert os.listdir(many.parent) == [many.name]

    # a header that claims 1 GiB + 1 byte: refused from the header, before any byte of it is inflated
    huge = tmp_path / "huge" / "cifar-10-python.tar.gz"
    huge.parent.mkdir()
    info, _data = file_member("cifar-10-batches-py/data_batch_1")
    info.size = _common.TAR_MAX_BYTES + 1
    huge.write_bytes(gzip.compress(info.tobuf()))
    with pytest.raises(UserError, match=r"^cifar10: refused .*: it unpacks to more than 1 GiB \(CIFAR-10's unpacks to"):
        source("cifar10", huge.parent, download=False).load()
    assert os.listdir(huge.parent) == [huge.name]


def tar_of_cifar(staging: Path, archive: Path) -> Path:
    write_cifar(staging)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(staging / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return archive


@pytest.mark.parametrize("case", ["cut", "clash"])
def test_broken_cifar_archive_leaves_no_partial_folder(tmp_path, offline, case):
    data_dir = tmp_path / "d"
    data_dir.mkdir()
    archive = data_dir / "cifar-10-python.tar.gz"
    if case == "cut":
        tar_of_cifar(tmp_path / "staging", archive)
        archive.write_bytes(archive.read_bytes()[:archive.stat().st_size // 2])
    else:  # every name passes the check, but the second needs the first to be a folder: it fails mid-extraction
        write_tar(archive, [file_member("cifar-10-batches-py/data_batch_1", cifar_batch_bytes()),
                            file_member("cifar-10-batches-py/data_batch_1/x")])
    with pytest.raises(UserError, match=rf"^cifar10: could not unpack {re.escape(str(archive))} \(\w+: .*\); replace"
                                        r" or delete it$"):
        source("cifar10", data_dir, download=False).load()
    assert os.listdir(data_dir) == [archive.name]


def test_cifar_archive_unpacks_into_place(tmp_path, offline):
    data_dir = tmp_path / "d"
    (data_dir / "cifar-10-batches-py").mkdir(parents=True)
    (data_dir / "cifar-10-batches-py" / "notes.txt").write_text("mine\n")  # merged, not replaced
    tar_of_cifar(tmp_path / "staging", data_dir / "cifar-10-python.tar.gz")
    expected = write_cifar(tmp_path / "again")
    torch.testing.assert_close(source("cifar10", data_dir, verify=False, download=False).load(),
                               scaled(expected["train"]))
    assert sorted(os.listdir(data_dir)) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]  # no .unpack- left
    assert (data_dir / "cifar-10-batches-py" / "notes.txt").read_text() == "mine\n"


@pytest.mark.parametrize("case", ["bomb", "not-gzip", "cut"])
def test_bad_gzipped_idx_file_leaves_nothing(tmp_path, offline, case):
    write_idx(tmp_path, "MNIST", gzipped=True)
    raw = tmp_path / "MNIST" / "raw"
    archive = raw / "train-images-idx3-ubyte.gz"
    if case == "bomb":  # zeros that inflate to one byte past the bound, from a 65 KB file
        with gzip.open(archive, "wb", compresslevel=1) as f:
            for _ in range(_common.GZIP_MAX_BYTES // 2**20):
                f.write(bytes(2**20))
            f.write(b"\0")
        refusal = (rf"^mnist: refused {re.escape(str(archive))}: it inflates past 64 MiB \(the largest official file"
                   r" is 47 MB\); nothing was written$")
    else:
        archive.write_bytes(b"not gzip at all" if case == "not-gzip" else archive.read_bytes()[:200])
        refusal = rf"^mnist: could not unpack {re.escape(str(archive))} \(\w+: .*\); replace or delete it; nothing"
    before = sorted(os.listdir(raw))
    with pytest.raises(UserError, match=refusal):
        source("mnist", tmp_path).load()
    assert sorted(os.listdir(raw)) == before  # neither the file nor a temporary one


def test_idx_headers_are_checked_before_torchvision_reads_them(tmp_path, offline):
    def crafted(name, dataset="mnist", class_name="MNIST", **files):
        root = tmp_path / name
        write_idx(root, class_name, gzipped=False)
        for file_name, content in files.items():
            (root / class_name / "raw" / file_name.replace("_", "-")).write_bytes(content)
        with pytest.raises(UserError) as raised:
            source(dataset, root).load()
        message = str(raised.value)
        assert message.startswith(f"{dataset}: {root / class_name / 'raw'}/") and "\n" not in message
        return message

    images = pattern(N_TRAIN, (28, 28), seed=1)
    assert crafted("counts", "fashion-mnist", "FashionMNIST", train_labels_idx1_ubyte=idx_bytes(np.arange(20) % 10)) \
        .endswith("/train-labels-idx1-ubyte holds 20 labels but " f"{tmp_path}/counts/FashionMNIST/raw/"
                  "train-images-idx3-ubyte holds 40 images; replace them with the official files")
    assert crafted("cut", train_images_idx3_ubyte=idx_bytes(images)[:-100]).endswith(
        "/train-images-idx3-ubyte is 31,276 bytes, but its header says 40 images (31,376 bytes); it is truncated or"
        " corrupt: replace it with the official file")
    assert crafted("magic", train_labels_idx1_ubyte=idx_bytes(images)).endswith(
        "/train-labels-idx1-ubyte is not an IDX file of labels (it does not start with the magic number 2049);"
        " replace it with the official file")
    assert crafted("short", train_images_idx3_ubyte=b"\0\0\x08").endswith(
        "/train-images-idx3-ubyte is not an IDX file of images (it does not start with the magic number 2051);"
        " replace it with the official file")
    assert crafted("side", train_images_idx3_ubyte=idx_bytes(images[:, :14, :14])).endswith(
        "/train-images-idx3-ubyte holds images of 14x14 pixels, not 28x28; replace it with the official file")
    labels = np.arange(N_TRAIN) % 10
    labels[3] = 12
    assert crafted("label", train_labels_idx1_ubyte=idx_bytes(labels)).endswith(
        "/train-labels-idx1-ubyte: label 12 of image 3 is outside 0..9; replace it with the official file")


def test_truncated_cifar_batch_is_not_called_code(tmp_path, offline):
    write_cifar(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:2000])
    with pytest.raises(UserError) as raised:
        source("cifar10", tmp_path, verify=False).load()
    assert re.fullmatch(rf"cifar10: could not read {re.escape(str(batch))}: it is truncated or corrupt \(\w+: .+\);"
                        r" replace it with the official file", str(raised.value)), raised.value
    assert "run code" not in str(raised.value)


def test_cifar_label_outside_the_classes_is_refused(tmp_path, offline):
    write_cifar(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    entry = {"data": np.zeros((2, 3072), np.uint8), "labels": [99, 1]}
    batch.write_bytes(pickle.dumps(entry, protocol=2))
    with pytest.raises(UserError) as raised:
        source("cifar10", tmp_path, verify=False).load_labels()
    assert str(raised.value) == (f"cifar10: {batch}: label 99 of image 0 is outside 0..9; replace it with the"
                                 " official file")


@pytest.mark.parametrize("verify", [True, False])
def test_fifo_in_place_of_a_data_file_is_refused_unopened(tmp_path, offline, no_hang, verify):
    write_cifar(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    batch.unlink()
    os.mkfifo(batch)
    with pytest.raises(UserError) as raised:
        source("cifar10", tmp_path, verify=verify).load()
    assert str(raised.value) == (f"cifar10: refused {batch}: it is a FIFO, not a regular file; replace it with the"
                                 " official file")


def test_downloaded_cifar_archive_is_unpacked_with_the_same_checks(tmp_path, monkeypatch):
    import torchvision.datasets.utils

    outside = tmp_path / "outside"
    outside.mkdir()
    crafted = escaping_archive(tmp_path / "served", outside)

    def download_url(url, root, filename, md5):  # what torchvision leaves in root once the MD5 matched
        os.makedirs(root, exist_ok=True)
        shutil.copy(crafted, Path(root) / filename)

    monkeypatch.setattr(_common, "_unreachable", lambda urls: None)
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", download_url)
    data_dir = tmp_path / "d"
    with pytest.raises(UserError, match=r"^cifar10: refused .*/d/cifar-10-python\.tar\.gz: member '\.\./\.\./ESCAPED_REL'"
                                        r" would be written outside .*/d; nothing was extracted$"):
        source("cifar10", data_dir).load()
    assert not list(tmp_path.rglob("ESCAPED*")) and os.listdir(data_dir) == ["cifar-10-python.tar.gz"]
