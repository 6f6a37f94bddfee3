"""MNIST handwritten digits (torchvision.datasets.MNIST)."""
from gan_registry import hookimpl

from ._common import IDX_FILES, TorchvisionImages, dataset


@hookimpl
def register_datasets(register):
    register(dataset(TorchvisionImages(
        name="mnist", title="MNIST", class_name="MNIST", channels=1, size=28, files=IDX_FILES, extractor="classifier",
        summary="MNIST: 60,000 handwritten 28x28 digits (torchvision; --data-dir, downloads if missing)",
    )))
