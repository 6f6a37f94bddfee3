"""CIFAR-10 colour images (torchvision.datasets.CIFAR10)."""
from gan_registry import hookimpl

from ._common import CIFAR10_FILES, TorchvisionImages, dataset


@hookimpl
def register_datasets(register):
    register(dataset(TorchvisionImages(
        name="cifar10", title="CIFAR-10", class_name="CIFAR10", channels=3, size=32, files=CIFAR10_FILES,
        classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        summary="CIFAR-10: 50,000 32x32 colour images in 10 classes (torchvision; --data-dir, downloads if missing)",
    )))
