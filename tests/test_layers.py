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


def test_conditional_batchnorm_scales_and_shifts_by_the_row_of_each_sample_class():
    norm = layers.ConditionalBatchNorm2d(3, num_classes=4).train()
    x, labels = torch.randn(8, 3, 5, 5), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    plain = nn.BatchNorm2d(3, affine=False).train()(x)
    assert torch.allclose(norm(x, labels), plain, atol=1e-6)  # scales start at 1, shifts at 0
    with torch.no_grad():
        norm.scale.weight[2] = torch.tensor([2.0, 3.0, 4.0])
        norm.shift.weight[2] = 5.0
    out = norm(x, labels)
    mine = labels == 2
    assert torch.allclose(out[mine], plain[mine] * torch.tensor([2.0, 3.0, 4.0])[:, None, None] + 5.0, atol=1e-5)
    assert torch.allclose(out[~mine], plain[~mine], atol=1e-6)


def test_projection_output_depends_on_the_label_and_trains_that_label_embedding_row():
    torch.manual_seed(0)
    head = layers.ClassCondition(6, num_classes=5, kind="projection")
    features, scores = torch.randn(2, 6), torch.zeros(2)
    a, b = head(features, scores, torch.tensor([1, 1])), head(features, scores, torch.tensor([3, 3]))
    assert not torch.allclose(a, b)
    assert torch.allclose(a, (head.embed.weight[1] * features).sum(1))  # <embed(y), features>, eq. 3 of the paper
    a.sum().backward()
    grad = head.embed.weight.grad
    assert grad[1].abs().sum() > 0 and grad[[0, 2, 3, 4]].abs().sum() == 0


def test_label_concat_appends_the_class_embedding_to_the_noise():
    concat = layers.LabelConcat(num_classes=4)
    z = torch.randn(3, 5)
    out = concat(z, torch.tensor([0, 2, 2]))
    assert out.shape == (3, 9) and torch.equal(out[:, :5], z) and torch.equal(out[1, 5:], out[2, 5:])
