"""digits reads scikit-learn's bundled file without importing sklearn: the same pixels and labels as load_digits."""
import subprocess
import sys

import numpy as np
import torch


def test_digits_file_reads_as_load_digits_does():
    from sklearn.datasets import load_digits

    from gan_registry_toy_datasets.digits import _digits, _images, _labels

    pixels, labels = _digits()
    reference = load_digits()
    assert np.array_equal(pixels, reference.data) and np.array_equal(labels, reference.target)
    images = _images(8)
    assert images.shape == (1797, 1, 8, 8)
    assert torch.equal(images, torch.as_tensor(reference.images, dtype=torch.float32)[:, None] / 8.0 - 1)
    assert torch.equal(_labels(), torch.as_tensor(reference.target))


def test_loading_digits_does_not_import_sklearn():
    code = ("import sys; from gan_registry_toy_datasets.digits import _images; _images(32); "
            "print('sklearn' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
