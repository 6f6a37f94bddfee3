"""Fashion-MNIST clothing images (torchvision.datasets.FashionMNIST)."""
from gan_registry import hookimpl

from ._common import IDX_FILES, TorchvisionImages, dataset


@hookimpl
def register_datasets(register):
    register(dataset(TorchvisionImages(
        name="fashion-mnist", title="Fashion-MNIST", class_name="FashionMNIST", channels=1, size=28, files=IDX_FILES, extractor="classifier",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        summary="Fashion-MNIST: 60,000 28x28 clothing images (torchvision; --data-dir, downloads if missing)",
    )))
