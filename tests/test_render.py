"""Sample grids are drawn without torchvision (its import costs start-up) and match its make_grid/save_image."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from gan_registry import render


@pytest.mark.parametrize("shape, nrow", [((64, 1, 32, 32), 8), ((10, 3, 16, 16), 4), ((3, 1, 8, 8), 8),
                                         ((1, 3, 5, 7), 1), ((7, 1, 4, 4), 3)])
def test_grid_equals_torchvision(tmp_path, shape, nrow):
    from torchvision.utils import make_grid, save_image

    images = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(render.grid(images, nrow), make_grid(images, nrow=nrow, padding=2))
    save_image(images, tmp_path / "theirs.png", nrow=nrow, padding=2)
    render._save_grid(images, tmp_path / "ours.png", (0.0, 1.0), nrow)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "ours.png")), np.asarray(Image.open(tmp_path / "theirs.png")))


def test_saving_a_grid_does_not_import_torchvision(tmp_path):
    code = ("import sys, torch; from gan_registry import render; "
            f"render.save(torch.rand(4, 1, 8, 8) * 2 - 1, {str(tmp_path / 'g.png')!r}, (-1.0, 1.0)); "
            "print('torchvision' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
    assert Image.open(tmp_path / "g.png").size == (22, 22)
