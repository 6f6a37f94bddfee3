"""What the MNIST, Fashion-MNIST and CIFAR-10 plugins share: parameters, file checks, loading.

torchvision reads the files; this module only checks that they are there first (so a user
without network gets one clear line, not a traceback), unpacks archives the user put in
place, and turns the dataset's uint8 `.data` into one float tensor in [-1, 1]. The files are
the user's input: an archive is unpacked only when every member stays in the data folder,
and a file whose header disagrees with the format is refused before torchvision reads it.
"""
from __future__ import annotations

import functools
import gzip
import math
import os
import socket
import stat
import struct
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

from gan_registry import Dataset, DataSource, UserError

DEFAULT_DATA_DIR = "./data"
PROBE_TIMEOUT_S = 3.0
"""How long a download site may take to answer before it counts as unreachable."""
DOWNLOAD_TIMEOUT_S = 30.0
"""Socket timeout while torchvision downloads (it opens its URLs without one): a stall fails, not hangs."""
TAR_MAX_BYTES = 2**30
"""Most bytes a tar archive may unpack to (CIFAR-10's unpacks to 178 MB): a bomb is refused before it is written."""
TAR_MAX_MEMBERS = 10_000
"""Most members a tar archive may hold (CIFAR-10's holds 9)."""
GZIP_MAX_BYTES = 64 * 2**20
"""Most bytes a gzipped IDX file may inflate to (the largest official one, train-images-idx3-ubyte, is 47,040,016)."""
IDX_IMAGES, IDX_LABELS = 2051, 2049
"""The magic numbers that open MNIST's IDX files: unsigned bytes in 3 dimensions (images) or 1 (labels)."""
IDX_SIDE = 28


@dataclass
class Params:
    download: bool = field(
        default=True, metadata={"help": "download the files with torchvision when they are not in --data-dir"}
    )
    split: Literal["train", "test"] = field(
        default="train", metadata={"help": "which split to train on; the other one is the held-out set"}
    )


@dataclass
class VerifiedParams(Params):
    verify: bool = field(
        default=True, metadata={"help": "check the files against torchvision's MD5 checksums of the official release"}
    )


class _Layout:
    """How one family of torchvision datasets lays out its files."""

    params: type = Params

    def folder(self, cls: Any, root: str) -> str:
        raise NotImplementedError

    def required(self, cls: Any) -> list[str]:
        """File names torchvision needs in `folder` before it will load either split."""
        raise NotImplementedError

    def present(self, cls: Any, root: str) -> bool:
        folder = self.folder(cls, root)
        return all(os.path.isfile(os.path.join(folder, name)) for name in self.required(cls))

    def missing(self, cls: Any, root: str) -> list[str]:
        folder = self.folder(cls, root)
        return [name for name in self.required(cls) if not os.path.isfile(os.path.join(folder, name))]

    def irregular(self, cls: Any, root: str) -> str | None:
        """Why a required file that is there is not one to read (a FIFO would block its reader forever), or None."""
        folder = self.folder(cls, root)
        for name in self.required(cls):
            path = os.path.join(folder, name)
            try:
                mode = os.stat(path).st_mode
            except OSError:
                continue  # not there: missing() names it
            if not stat.S_ISREG(mode):
                return f"refused {path}: it is {_kind(mode)}, not a regular file; replace it with the official file"
        return None

    def unpack(self, cls: Any, root: str) -> None:
        """Unpack archives the user put in place of missing files."""

    def hint(self, cls: Any, root: str, missing: list[str]) -> str:
        raise NotImplementedError

    def urls(self, cls: Any) -> list[str]:
        """Where torchvision downloads from, one URL per mirror."""
        raise NotImplementedError

    def open(self, cls: Any, root: str, train: bool, params: Params) -> Any:
        """The split from files already in place, as an object with torchvision's `.data`."""
        return cls(root, train=train, download=False)

    def fetch(self, cls: Any, root: str) -> None:
        """Download and unpack the release's files into `root` (torchvision checks their MD5s)."""
        cls(root, train=True, download=True)

    def images(self, data: Any):
        """torchvision's `.data` as a uint8 tensor (N, C, H, W)."""
        raise NotImplementedError


def _unreachable(urls: list[str]) -> str | None:
    """None when one of `urls` answers within PROBE_TIMEOUT_S, else why the last one did not.

    torchvision tries each mirror with no timeout, which hangs where the network drops packets.
    """
    import urllib.error
    import urllib.request

    reason = "no download address"
    for url in urls:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PROBE_TIMEOUT_S):
                return None
        except urllib.error.HTTPError:
            return None  # a server answered; torchvision will make sense of it
        except (urllib.error.URLError, OSError) as error:
            reason = f"{url}: {getattr(error, 'reason', None) or error}"
    return reason


def _kind(mode: int) -> str:
    """What a file that is not a regular one is, for a message."""
    kinds = [(stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder")]
    return next((kind for test, kind in kinds if test(mode)), "not a file")


def _tar_refusal(tar: tarfile.TarFile, root: str) -> str | None:
    """Why `tar` may not be unpacked into `root`, from every member's header before any is written; or None.

    Only files and folders named inside `root` pass: a link member could point a later member anywhere.
    """
    total = 0
    for count, member in enumerate(tar, 1):
        name = member.name
        total += member.size
        if count > TAR_MAX_MEMBERS:
            return f"it holds more than {TAR_MAX_MEMBERS:,} members"
        if total > TAR_MAX_BYTES:
            return f"it unpacks to more than {TAR_MAX_BYTES // 2**30} GiB (CIFAR-10's unpacks to 178 MB)"
        if os.path.isabs(name):
            return f"member {name!r} has an absolute name"
        if os.path.commonpath([root, os.path.normpath(os.path.join(root, name))]) != root:
            return f"member {name!r} would be written outside {root}"
        if ".." in name.split("/"):
            return f"member {name!r} has '..' in its name"
        if member.issym() or member.islnk():
            return f"member {name!r} is a {'symbolic' if member.issym() else 'hard'} link to {member.linkname!r}"
        if not (member.isfile() or member.isdir()):
            kind = "a FIFO" if member.isfifo() else "a device file" if member.isdev() else f"of tar type {member.type!r}"
            return f"member {name!r} is {kind}, not a file or folder"
    return None


def _move(source: str, target: str) -> None:
    """Move `source` to `target`, merging folders: a file of the same name is replaced, others are kept."""
    if os.path.isdir(source) and os.path.isdir(target):
        for name in os.listdir(source):
            _move(os.path.join(source, name), os.path.join(target, name))
    else:
        os.replace(source, target)


def _untar(archive: str, root: str) -> None:
    """Unpack the tar `archive` into the folder `root`, or refuse it whole.

    The members go to a hidden folder in `root` first and are moved into place once all are out, so a
    failure part-way leaves no half-written folder.
    """
    root = os.path.abspath(root)
    try:
        with tarfile.open(archive) as tar, tempfile.TemporaryDirectory(prefix=".unpack-", dir=root) as unpacked:
            refusal = _tar_refusal(tar, root)
            if refusal:
                raise UserError(f"refused {archive}: {refusal}; nothing was extracted")
            # a second line of defence behind the check above, where this Python has it (3.10.12, 3.11.4 on)
            tar.extractall(unpacked, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
            for name in os.listdir(unpacked):
                _move(os.path.join(unpacked, name), os.path.join(root, name))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise UserError(f"could not unpack {archive} ({type(error).__name__}: {_one_line(error)}); replace or delete"
                        " it") from None


def _one_line(error: BaseException) -> str:
    """tarfile's "not an archive" lists what each of its openers said, a line each."""
    return " ".join(str(error).split())


def _gunzip(archive: str, target: str) -> None:
    """Inflate `archive` to `target`, refusing it past GZIP_MAX_BYTES; a failure leaves no file behind."""
    try:
        with gzip.open(archive) as source, \
                tempfile.TemporaryDirectory(prefix=".unpack-", dir=os.path.dirname(target)) as unpacked:
            part = os.path.join(unpacked, os.path.basename(target))
            with open(part, "wb") as out:
                written = 0
                while chunk := source.read(2**20):
                    written += len(chunk)
                    if written > GZIP_MAX_BYTES:
                        raise UserError(f"refused {archive}: it inflates past {GZIP_MAX_BYTES // 2**20} MiB (the"
                                        " largest official file is 47 MB); nothing was written")
                    out.write(chunk)
            if not written:
                raise UserError(f"refused {archive}: it inflates to nothing; nothing was written")
            os.replace(part, target)
    except (OSError, EOFError, zlib.error) as error:  # not gzip, truncated, corrupt, or the folder is not writable
        raise UserError(f"could not unpack {archive} ({type(error).__name__}: {_one_line(error)}); replace or delete"
                        " it; nothing was written") from None


def _idx_count(path: str, magic: int, what: str, shape: tuple[int, ...]) -> int:
    """How many items of `shape` the IDX file at `path` holds, once its header and its size agree."""
    ndim = 1 + len(shape)
    with open(path, "rb") as f:
        header = f.read(4 * (1 + ndim))
        size = os.fstat(f.fileno()).st_size
    fields = struct.unpack(f">{1 + ndim}I", header) if len(header) == 4 * (1 + ndim) else (None,)
    if fields[0] != magic:
        raise UserError(f"{path} is not an IDX file of {what} (it does not start with the magic number {magic});"
                        " replace it with the official file")
    count, *dims = fields[1:]
    if tuple(dims) != shape:
        raise UserError(f"{path} holds {what} of {'x'.join(map(str, dims))} pixels, not"
                        f" {'x'.join(map(str, shape))}; replace it with the official file")
    expected = len(header) + count * math.prod(shape)
    if size != expected:
        raise UserError(f"{path} is {size:,} bytes, but its header says {count:,} {what} ({expected:,} bytes); it is"
                        " truncated or corrupt: replace it with the official file")
    return count


def check_labels(path: str, labels: list[int], classes: int) -> None:
    """Refuse a label outside 0..classes-1: a conditional model would index past its class embeddings."""
    for index, label in enumerate(labels):
        if not 0 <= label < classes:
            raise UserError(f"{path}: label {label} of image {index} is outside 0..{classes - 1}; replace it with the"
                            " official file")


class _IdxLayout(_Layout):
    """MNIST and Fashion-MNIST: four IDX files in ROOT/<ClassName>/raw, optionally gzipped."""

    def folder(self, cls: Any, root: str) -> str:
        return os.path.join(root, cls.__name__, "raw")

    def required(self, cls: Any) -> list[str]:
        return [os.path.splitext(name)[0] for name, _md5 in cls.resources]

    def processed(self, cls: Any, root: str) -> list[str]:
        """The train and test tensors torchvision before 0.9 saved; torchvision reads them in place of raw/."""
        folder = os.path.join(root, cls.__name__, "processed")
        return [os.path.join(folder, name) for name in (cls.training_file, cls.test_file)]

    def present(self, cls: Any, root: str) -> bool:
        return all(map(os.path.isfile, self.processed(cls, root))) or super().present(cls, root)

    def unpack(self, cls: Any, root: str) -> None:
        folder = self.folder(cls, root)
        for name in self.missing(cls, root):
            archive = os.path.join(folder, name + ".gz")
            if os.path.isfile(archive):
                _gunzip(archive, os.path.join(folder, name))

    def open(self, cls: Any, root: str, train: bool, params: Params) -> Any:
        # torchvision asserts on a header it dislikes, and reads labels and images of unequal counts as they are
        processed = self.processed(cls, root)
        if all(map(os.path.isfile, processed)):
            labels = processed[0 if train else 1]
        else:
            prefix = os.path.join(self.folder(cls, root), "train" if train else "t10k")
            images, labels = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"
            count = _idx_count(images, IDX_IMAGES, "images", (IDX_SIDE, IDX_SIDE))
            labelled = _idx_count(labels, IDX_LABELS, "labels", ())
            if labelled != count:
                raise UserError(f"{labels} holds {labelled:,} labels but {images} holds {count:,} images; replace"
                                " them with the official files")
        data = cls(root, train=train, download=False)
        check_labels(labels, data.targets.tolist(), len(cls.classes))
        return data

    def hint(self, cls: Any, root: str, missing: list[str]) -> str:
        names = [f"{name}(.gz)" for name in missing]
        listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
        return f"put {listed} there (from {cls.mirrors[0]})"

    def urls(self, cls: Any) -> list[str]:
        return [mirror + cls.resources[0][0] for mirror in cls.mirrors]

    def images(self, data: Any):
        return data[:, None]  # torch uint8 (N, H, W)


class _CifarLayout(_Layout):
    """CIFAR-10: pickled batches in ROOT/cifar-10-batches-py, from cifar-10-python.tar.gz."""

    params = VerifiedParams

    def folder(self, cls: Any, root: str) -> str:
        return os.path.join(root, cls.base_folder)

    def required(self, cls: Any) -> list[str]:
        return [name for name, _md5 in cls.train_list + cls.test_list] + [cls.meta["filename"]]

    def unpack(self, cls: Any, root: str) -> None:
        archive = os.path.join(root, cls.filename)
        if self.missing(cls, root) and os.path.isfile(archive):
            _untar(archive, root)

    def hint(self, cls: Any, root: str, missing: list[str]) -> str:
        return (
            f"put {cls.filename} (from {cls.url}) in {root}, or its extracted {cls.base_folder}/"
            f" ({', '.join(self.required(cls))})"
        )

    def urls(self, cls: Any) -> list[str]:
        return [cls.url]

    def fetch(self, cls: Any, root: str) -> None:
        from torchvision.datasets.utils import download_url

        # The archive alone, MD5-checked: CIFAR10(download=True) would also unpickle the batches, and
        # torchvision's extraction follows link members out of root.
        download_url(cls.url, root, filename=cls.filename, md5=cls.tgz_md5)
        _untar(os.path.join(root, cls.filename), root)

    def open(self, cls: Any, root: str, train: bool, params: Params) -> Any:
        # Never torchvision's reader: it unpickles the batches, and a crafted one runs code.
        from torchvision.datasets.utils import check_integrity

        from ._cifar import read_split

        folder = self.folder(cls, root)
        listed = cls.train_list if train else cls.test_list
        if getattr(params, "verify", True):
            for name, md5 in [*listed, (cls.meta["filename"], cls.meta["md5"])]:
                if not check_integrity(os.path.join(folder, name), md5):
                    raise UserError(f"the files in {folder} do not match the MD5 checksums"
                                    " of the official CIFAR-10 release; replace them, or pass -p dataset.verify=false"
                                    " to load them as they are (read as plain arrays, never as code)")
        return read_split(folder, [name for name, _md5 in listed], cls.meta["filename"])

    def images(self, data: Any):
        import torch

        return torch.from_numpy(data).permute(0, 3, 1, 2)  # numpy uint8 (N, H, W, C)


IDX_FILES = _IdxLayout()
CIFAR10_FILES = _CifarLayout()


@dataclass(frozen=True)
class TorchvisionImages:
    """One torchvision image dataset, as a gan-registry dataset."""

    name: str
    title: str
    class_name: str
    """Its class in torchvision.datasets."""
    channels: int
    size: int
    """Native image side in pixels."""
    files: _Layout
    summary: str
    classes: tuple[str, ...] = tuple(str(d) for d in range(10))
    """The release's class names, known without reading its files."""
    extractor: str | None = None
    """The feature extractor its image metrics use by default (None: the engine's, inception-v3)."""

    def torchvision_class(self) -> Any:
        import torchvision.datasets

        return getattr(torchvision.datasets, self.class_name)

    def _download(self, cls: Any, root: str, train: bool) -> Any:
        unreachable = _unreachable(self.files.urls(cls))
        if unreachable:
            raise OSError(unreachable)
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # torchvision opens its URLs without a timeout
        try:
            self.files.fetch(cls, root)
        finally:
            socket.setdefaulttimeout(previous)

    def read(self, params: Params, root: str, train: bool) -> Any:
        """torchvision's dataset for one split; a UserError, naming this dataset, when its files cannot be had."""
        try:
            return self._read(params, root, train)
        except UserError as error:
            raise UserError(f"{self.name}: {error}") from None

    def _read(self, params: Params, root: str, train: bool) -> Any:
        base = self.torchvision_class()
        folder = self.files.folder(base, root)
        refusal = self.files.irregular(base, root)
        if refusal:
            raise UserError(refusal)
        if not self.files.present(base, root):
            self.files.unpack(base, root)
        if self.files.present(base, root):
            try:
                return self.files.open(base, root, train, params)
            except UserError:
                raise
            except Exception as error:
                problem = " ".join(str(error).split()) or type(error).__name__
                raise UserError(f"could not read the {self.title} files in {folder} "
                                f"({type(error).__name__}: {problem}); replace them with the official ones") from None
        missing = self.files.missing(base, root)
        problem = f"no data in {folder}" if len(missing) == len(self.files.required(base)) else \
            f"{folder} lacks {', '.join(missing)}"
        hint = self.files.hint(base, root, missing)
        if not params.download:
            raise UserError(f"{problem}; {hint}, or run with -p dataset.download=true and network access")
        try:
            self._download(base, root, train)
            return self.files.open(base, root, train, params)
        except UserError:  # the downloaded files, refused
            raise
        except Exception as error:  # no network, a mirror down, a checksum mismatch
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            reason = lines[-1] if lines else type(error).__name__
            raise UserError(f"{problem}; {hint}, or run with network access (download failed: {reason})") from None

    def loader(self, read, size: int, train: bool):
        def load():
            import torch
            import torch.nn.functional as F

            images = self.files.images(read(train).data)
            x = images.to(torch.float32).div_(255.0)
            if x.shape[-1] != size or x.shape[-2] != size:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
                x = x.clamp_(0.0, 1.0)
            return x.mul_(2.0).sub_(1.0).contiguous()

        return load

    def build(self, params: Params, context) -> DataSource:
        root = os.path.expanduser(context.data_dir or DEFAULT_DATA_DIR)
        size = context.image_size or self.size
        train = params.split == "train"
        read = functools.lru_cache(maxsize=2)(lambda split_is_train: self.read(params, root, split_is_train))
        return DataSource(
            sample_shape=(self.channels, size, size),
            value_range=(-1.0, 1.0),
            load=self.loader(read, size, train),
            load_heldout=self.loader(read, size, not train),
            classes=self.classes,
            load_labels=self.label_loader(read, train),
            load_heldout_labels=self.label_loader(read, not train),
        )

    @staticmethod
    def label_loader(read, train: bool):
        def load():
            import torch

            return torch.as_tensor(read(train).targets, dtype=torch.int64)

        return load


def dataset(spec: TorchvisionImages) -> Dataset:
    return Dataset(name=spec.name, summary=spec.summary, params=spec.files.params, factory=spec.build,
                   extractor=spec.extractor)
