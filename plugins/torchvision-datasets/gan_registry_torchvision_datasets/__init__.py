"""torchvision's MNIST, Fashion-MNIST and CIFAR-10 as gan-registry datasets.

Each submodule but `_common` is a plugin of its own; torch and torchvision are imported
only when a dataset is loaded.
"""
