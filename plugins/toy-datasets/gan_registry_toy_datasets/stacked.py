"""Stacked MNIST (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018): three digits as one colour image.

Each sample stacks three randomly drawn digit images of a labelled one-channel dataset as its three channels
(R, G, B), so the data has 10 x 10 x 10 = 1,000 modes, the digit triples; a sample's label is
100 * a + 10 * b + c for the digits a, b, c of its channels. The `stacked-modes` metric (image-metrics plugin)
counts how many of them a generator reaches. Which images are stacked is fixed by `seed`, so the data is the
same every run; the source's held-out images make a held-out stacked set of `count // 10` samples.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field

from gan_registry import DataContext, Dataset, DataSource, IncompatibleError, hookimpl

CHANNELS = 3
DIGITS = 10
MODES = DIGITS ** CHANNELS
HELDOUT_FRACTION = 10  # the held-out stacked set is count // 10 samples
HELDOUT_SEED_OFFSET = 1_000_003  # the held-out triples' seed: seed + this (apart from any training seed)


@dataclass
class StackedParams:
    source: str = field(
        default="digits",
        metadata={"help": "the labelled one-channel 10-class dataset whose images are stacked: digits (offline) or "
                          "mnist (from --data-dir)"},
    )
    count: int = field(
        default=20_000,
        metadata={"help": "stacked samples, held in memory as float32: 20,000 at 32x32 take 245 MB (12 KB each); "
                          "the held-out set is a tenth of it"},
    )
    size: int | None = field(
        default=None,
        metadata={"help": "image side, passed on to the source (--image-size overrides; none: the source's own)"},
    )
    seed: int = field(default=0, metadata={"help": "which triples are drawn (independent of the run's seed)"})

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count must be at least 1, got {self.count}")
        if self.size is not None and self.size < 1:
            raise ValueError(f"size must be at least 1, got {self.size}")


def source_key(source, params, data, data_dir: str | None) -> str:
    """A text naming the source dataset with its parameters, files and sample shape, for cache keys.

    Written as the engine names a dataset for its own caches, so that a classifier trained on the source for
    its image metrics (`gan eval --real digits`) serves the stacked-modes metric too.
    """
    origin = source.origin
    return json.dumps({"dataset": source.name, "distribution": origin.distribution if origin else None,
                       "version": origin.version if origin else None,
                       "params": dataclasses.asdict(params) if params is not None else {},
                       "data_dir": data_dir, "shape": list(data.sample_shape)}, sort_keys=True)


def _source(params: StackedParams, context: DataContext):
    """The source Dataset, its params and its DataSource, refused unless it is one-channel with 10 classes."""
    registry = context.registry
    if registry is None:
        raise IncompatibleError("stacked builds on another dataset and needs the run's registry of datasets "
                                "(DataContext.registry); it has none here")
    source = registry.get("dataset", params.source)
    if source.name == "stacked":
        raise IncompatibleError("stacked cannot stack itself; give a one-channel digit dataset (digits, mnist)")
    size = context.image_size or params.size
    source_params = source.default_params()
    if size is not None and source_params is not None and any(f.name == "size" for f in dataclasses.fields(source_params)):
        source_params = dataclasses.replace(source_params, size=size)
    data = source.factory(source_params, DataContext(data_dir=context.data_dir, image_size=size, registry=registry))
    shape = tuple(data.sample_shape)
    if len(shape) != 3 or shape[0] != 1:
        raise IncompatibleError(f"stacked stacks one-channel images as colour channels; dataset '{source.name}' has "
                                f"samples of shape {shape}")
    if not data.classes or data.load_labels is None:
        raise IncompatibleError(f"stacked labels each sample by the classes of its three channels; dataset "
                                f"'{source.name}' has no labels")
    if len(data.classes) != DIGITS:
        raise IncompatibleError(f"stacked needs a dataset of exactly {DIGITS} classes (three channels of 10 make its "
                                f"1,000 modes); dataset '{source.name}' has {len(data.classes)}")
    return source, source_params, data


def _images_tensor(images):
    import torch

    if isinstance(images, torch.Tensor):
        return images
    return torch.stack([torch.as_tensor(images[i]) for i in range(len(images))])  # a map-style Dataset


class _Split:
    """One stacked split: triples of indices into the source's split, drawn once from `seed`."""

    def __init__(self, load_images, load_labels, count: int, seed: int) -> None:
        self.load_images, self.load_labels_of_source = load_images, load_labels
        self.count, self.seed = count, seed

    @functools.cached_property
    def triples(self):
        """(count, 3) int64 indices into the source split, and the source's labels."""
        import torch

        labels = torch.as_tensor(self.load_labels_of_source()).long()
        if len(labels) == 0:
            raise IncompatibleError("stacked: the source dataset's split holds no images")
        g = torch.Generator().manual_seed(self.seed)
        return torch.randint(len(labels), (self.count, CHANNELS), generator=g), labels

    def load(self):
        import torch

        index, labels = self.triples
        images = _images_tensor(self.load_images())
        if len(images) != len(labels):
            raise IncompatibleError(f"stacked: the source gives {len(images)} images and {len(labels)} labels")
        stacked = images[index.reshape(-1)].to(torch.float32)  # (count * 3, 1, H, W)
        return stacked.reshape(self.count, CHANNELS, *stacked.shape[2:]).contiguous()

    def labels(self):
        index, labels = self.triples
        digits = labels[index]  # (count, 3)
        return digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]


def build(params: StackedParams, context: DataContext) -> DataSource:
    source, source_params, data = _source(params, context)
    _, height, width = data.sample_shape
    train = _Split(data.load, data.load_labels, params.count, params.seed)
    heldout = None
    if data.load_heldout is not None and data.load_heldout_labels is not None:
        heldout = _Split(data.load_heldout, data.load_heldout_labels, max(1, params.count // HELDOUT_FRACTION),
                         params.seed + HELDOUT_SEED_OFFSET)
    return DataSource(
        sample_shape=(CHANNELS, height, width),
        value_range=data.value_range,
        load=train.load,
        load_heldout=heldout.load if heldout else None,
        classes=tuple(f"{m:03d}" for m in range(MODES)),
        load_labels=train.labels,
        load_heldout_labels=heldout.labels if heldout else None,
        reference={"channel_source": data, "channel_source_key": source_key(source, source_params, data,
                                                                            context.data_dir),
                   "modes": MODES},
    )


# The engine's default length is 100 epochs: 31,250 steps of 64 over the default 20,000 samples, most of a day
# for DCGAN on a CPU (0.5-1 step/s measured), and longer still for a larger `count`. A fixed length keeps a default run
# of a few thousand steps, whatever `count` is (--steps or --epochs override it). Not tuned for mode coverage.
SUGGESTS = {"steps": 5_000}


@hookimpl
def register_datasets(register):
    register(Dataset(name="stacked", summary="Stacked MNIST: three random digits as R, G, B; 1,000 modes "
                                             "(VEEGAN, PacGAN; offline with digits)",
                     params=StackedParams, factory=build, extractor="classifier", suggests=SUGGESTS))
