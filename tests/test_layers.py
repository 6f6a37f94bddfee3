"""gan_registry.layers: the shared building blocks do what their names say."""
import pytest
import torch
from torch import nn

from gan_registry import layers


@pytest.mark.parametrize("kind", ["instance", "layer", "none"])
def test_per_sample_norms_do_not_mix_the_batch(kind):
    module = layers.norm(kind, 4, maps=True).train()
    x = torch.randn(6, 4, 5, 5)
    alone = module(x[:1])
    assert torch.allclose(module(x)[:1], alone, atol=1e-6)


def test_batch_norm_mixes_the_batch_and_vectors_get_1d_layers():
    module = layers.norm("batch", 4, maps=True).train()
    x = torch.randn(6, 4, 5, 5)
    assert not torch.allclose(module(x)[:1], module(x[:1]), atol=1e-3)
    assert isinstance(layers.norm("batch", 3, maps=False), nn.BatchNorm1d)
    assert isinstance(layers.norm("layer", 3, maps=False), nn.LayerNorm)
    with pytest.raises(ValueError, match="unknown norm 'group'"):
        layers.norm("group", 3, maps=True)


def test_to_range_bounds_the_output_to_the_data_range():
    x = torch.linspace(-50, 50, 101)
    for lo, hi in [(-1.0, 1.0), (0.0, 1.0), (-3.0, 5.0)]:
        y = layers.to_range(x, (lo, hi))
        assert y.min() >= lo and y.max() <= hi and y[50] == pytest.approx((lo + hi) / 2)
    assert torch.equal(layers.to_range(x, None), x)


def test_dcgan_init_and_spectral_norm():
    net = nn.Sequential(nn.Conv2d(3, 64, 4), nn.BatchNorm2d(64), nn.Linear(10, 256))
    torch.manual_seed(0)
    layers.init_dcgan(net)
    assert net[0].weight.std().item() == pytest.approx(0.02, rel=0.1) and net[0].bias.abs().max() == 0
    assert net[1].weight.mean().item() == pytest.approx(1.0, abs=0.01)
    layers.spectral_norm(net)
    keys = net.state_dict().keys()
    assert any("parametrizations.weight.original" in k for k in keys) and any("_u" in k for k in keys)
    w = net[2].weight  # the normalised weight: its largest singular value is about 1
    for _ in range(20):
        net[2](torch.randn(2, 10))
    assert torch.linalg.matrix_norm(net[2].weight, ord=2).item() == pytest.approx(1.0, rel=0.05)
    assert w.shape == (256, 10)
