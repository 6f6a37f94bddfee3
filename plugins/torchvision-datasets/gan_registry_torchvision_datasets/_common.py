"""What the MNIST, Fashion-MNIST and CIFAR-10 plugins share: parameters, file checks, loading.

torchvision reads the files; this module only checks that they are there first (so a user
without network gets one clear line, not a traceback), unpacks archives the user put in
place, and turns the dataset's uint8 `.data` into one float tensor in [-1, 1].
"""
from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Literal

from gan_registry import Dataset, DataSource, UserError

DEFAULT_DATA_DIR = "./data"
PROBE_TIMEOUT_S = 3.0
"""How long a download site may take to answer before it counts as unreachable."""
DOWNLOAD_TIMEOUT_S = 30.0
"""Socket timeout while torchvision downloads (it opens its URLs without one): a stall fails, not hangs."""


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


def _unpack(name: str, archive: str, into: str) -> None:
    from torchvision.datasets.utils import extract_archive

    try:
        extract_archive(archive, into)
    except Exception as error:  # a truncated or foreign archive
        raise UserError(f"{name}: could not unpack {archive} ({type(error).__name__}: {error}); replace or delete it")


class _IdxLayout(_Layout):
    """MNIST and Fashion-MNIST: four IDX files in ROOT/<ClassName>/raw, optionally gzipped."""

    def folder(self, cls: Any, root: str) -> str:
        return os.path.join(root, cls.__name__, "raw")

    def required(self, cls: Any) -> list[str]:
        return [os.path.splitext(name)[0] for name, _md5 in cls.resources]

    def present(self, cls: Any, root: str) -> bool:
        # torchvision still reads the tensors that versions before 0.9 saved in processed/
        processed = os.path.join(root, cls.__name__, "processed")
        legacy = all(os.path.isfile(os.path.join(processed, f)) for f in (cls.training_file, cls.test_file))
        return legacy or super().present(cls, root)

    def unpack(self, cls: Any, root: str) -> None:
        folder = self.folder(cls, root)
        for name in self.missing(cls, root):
            archive = os.path.join(folder, name + ".gz")
            if os.path.isfile(archive):
                try:
                    _unpack(cls.__name__, archive, folder)
                except UserError:
                    if os.path.exists(os.path.join(folder, name)):
                        os.remove(os.path.join(folder, name))  # not leave a truncated file behind
                    raise

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
            _unpack(cls.__name__, archive, root)

    def hint(self, cls: Any, root: str, missing: list[str]) -> str:
        return (
            f"put {cls.filename} (from {cls.url}) in {root}, or its extracted {cls.base_folder}/"
            f" ({', '.join(self.required(cls))})"
        )

    def urls(self, cls: Any) -> list[str]:
        return [cls.url]

    def fetch(self, cls: Any, root: str) -> None:
        from torchvision.datasets.utils import download_and_extract_archive

        # The archive alone, MD5-checked: CIFAR10(download=True) would also unpickle the batches.
        download_and_extract_archive(cls.url, root, filename=cls.filename, md5=cls.tgz_md5)

    def open(self, cls: Any, root: str, train: bool, params: Params) -> Any:
        # Never torchvision's reader: it unpickles the batches, and a crafted one runs code.
        from torchvision.datasets.utils import check_integrity

        from ._cifar import read_split

        folder = self.folder(cls, root)
        listed = cls.train_list if train else cls.test_list
        if getattr(params, "verify", True):
            for name, md5 in [*listed, (cls.meta["filename"], cls.meta["md5"])]:
                if not check_integrity(os.path.join(folder, name), md5):
                    raise UserError(f"{cls.__name__.lower()}: the files in {folder} do not match the MD5 checksums"
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
        """torchvision's dataset for one split; a UserError when its files cannot be had."""
        base = self.torchvision_class()
        folder = self.files.folder(base, root)
        if not self.files.present(base, root):
            self.files.unpack(base, root)
        if self.files.present(base, root):
            try:
                return self.files.open(base, root, train, params)
            except UserError:
                raise
            except Exception as error:
                problem = " ".join(str(error).split()) or type(error).__name__
                raise UserError(f"{self.name}: could not read the {self.title} files in {folder} "
                                f"({type(error).__name__}: {problem}); replace them with the official ones") from None
        missing = self.files.missing(base, root)
        problem = f"no data in {folder}" if len(missing) == len(self.files.required(base)) else \
            f"{folder} lacks {', '.join(missing)}"
        hint = self.files.hint(base, root, missing)
        if not params.download:
            raise UserError(f"{self.name}: {problem}; {hint}, or run with -p dataset.download=true and network access")
        try:
            self._download(base, root, train)
            return self.files.open(base, root, train, params)
        except Exception as error:  # no network, a mirror down, a checksum mismatch
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            reason = lines[-1] if lines else type(error).__name__
            raise UserError(f"{self.name}: {problem}; {hint}, or run with network access "
                            f"(download failed: {reason})") from None

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
