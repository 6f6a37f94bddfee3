"""resnet pieces: shapes, the paper's layout and parameter counts, class conditioning (conditional BatchNorm,
projection, ACGAN), refusals, spectral norm, registration."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

import gan_registry_resnet as resnet
from gan_registry_resnet import _nets
from gan_registry import IncompatibleError, NetworkSpec, Needs, layers

LATENT = 16
WIDTH = 8  # small nets: the whole file runs in seconds on a busy 2-core machine


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread (small nets run far faster so on a shared 2-core machine), restored afterwards with the
    random states."""
    from gan_registry.testing import preserved_rng

    threads = torch.get_num_threads()
    with preserved_rng():
        torch.set_num_threads(1)
        torch.manual_seed(0)
        yield
    torch.set_num_threads(threads)


def spec(shape=(3, 32, 32), num_classes=None, needs=Needs(), latent_dim=LATENT, value_range=(-1.0, 1.0)):
    return NetworkSpec(tuple(shape), latent_dim, value_range, needs=needs, num_classes=num_classes)


def generator(s, width=WIDTH):
    return resnet.build_generator(resnet.GeneratorParams(width=width), s)


def discriminator(s, width=WIDTH, **params):
    return resnet.build_discriminator(resnet.DiscriminatorParams(width=width, **params), s)


def count(net):
    return sum(p.numel() for p in net.parameters())


# -- shapes and layout ----------------------------------------------------------------------

@pytest.mark.parametrize(("channels", "side"), [(1, 32), (3, 32), (3, 64)])
def test_shapes_and_range(channels, side):
    s = spec((channels, side, side))
    images = generator(s)(torch.randn(4, LATENT))
    assert images.shape == (4, channels, side, side)
    assert images.min() >= -1 and images.max() <= 1
    assert discriminator(s)(images).shape == (4,)


@pytest.mark.parametrize("conditioning", ["projection", "acgan"])
def test_conditional_shapes(conditioning):
    s = spec((1, 32, 32), num_classes=10)
    labels = torch.tensor([0, 3, 9, 3])
    images = generator(s)(torch.randn(4, LATENT), labels)
    assert images.shape == (4, 1, 32, 32)
    out = discriminator(s, conditioning=conditioning)(images, labels)
    scores = out[0] if conditioning == "acgan" else out
    assert scores.shape == (4,)


def test_value_ranges():
    z = torch.randn(3, LATENT)
    images = generator(spec(value_range=(0.0, 1.0)))(z)
    assert images.min() >= 0 and images.max() <= 1
    net = generator(spec(value_range=None)).eval()
    h = net.stem(z).view(-1, WIDTH, 4, 4)
    for block in net.blocks:
        h = block(h)
    assert torch.equal(net(z), net.out(F.relu(net.norm(h)))), "unbounded data gets no output activation"


def _down(block):
    return isinstance(block, _nets.OptimizedBlock) or block.down


@pytest.mark.parametrize(("side", "up_blocks", "layout"), [
    (32, 3, [True, True, False, False]),  # the paper's CIFAR-10 discriminator: optimized down, down, plain, plain
    (64, 4, [True, True, True, False, False]),
])
def test_layout(side, up_blocks, layout):
    s = spec((3, side, side))
    g, d = generator(s), discriminator(s, spectral_norm=False)
    assert len(g.blocks) == up_blocks
    assert isinstance(d.blocks[0], _nets.OptimizedBlock)
    assert [_down(b) for b in d.blocks] == layout
    # width -> width blocks that keep the resolution have SNGAN's identity shortcut
    assert [b.shortcut is None for b in d.blocks] == [not down for down in layout]
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)) for m in d.modules())
    seen = []
    d.linear.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape))
    d.blocks[-1].register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    d(torch.randn(2, 3, side, side))
    assert seen == [(2, WIDTH, 8, 8), (2, WIDTH)]  # 8x8 maps, summed over space


def test_init():
    g, d = generator(spec(), width=32), discriminator(spec(), width=32, spectral_norm=False)
    block = g.blocks[0]

    def bound(w, gain):  # xavier_uniform_ draws from U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(w)
        return gain * (6 / (fan_in + fan_out)) ** 0.5

    for layer, gain in [(block.conv1, 2 ** 0.5), (block.conv2, 2 ** 0.5), (block.shortcut, 1.0), (g.stem, 1.0),
                        (g.out, 1.0), (d.blocks[1].conv1, 2 ** 0.5), (d.blocks[1].shortcut, 1.0), (d.linear, 1.0)]:
        w = layer.weight.detach()
        assert w.abs().max() <= bound(w, gain) and w.abs().max() > 0.9 * bound(w, gain)
        assert not layer.bias.any()


# -- the paper's configuration --------------------------------------------------------------

def test_paper_configuration_parameter_counts():
    s = spec((3, 32, 32), latent_dim=128)
    # Generator, width 256 (Miyato et al. 2018, table 4; mimicry's SNGAN32 has ~4.3M):
    #   Linear 128 -> 256*4*4:      128*4096 + 4096                            =   528,384
    #   up-block (x3): 2 BN (2*256 each) + 2 conv3x3 (256*256*9 + 256) + conv1x1 (256*256 + 256)
    #                  = 1,024 + 2*590,080 + 65,792 = 1,246,976               x 3 = 3,740,928
    #   BN 256: 512; conv3x3 256 -> 3: 256*3*9 + 3 = 6,915
    assert count(generator(s, width=256)) == 528_384 + 3 * 1_246_976 + 512 + 6_915 == 4_276_739
    # Discriminator, width 128 (mimicry's SNGAN32 has ~1.0M):
    #   optimized block: conv3x3 3 -> 128 (3,584) + conv3x3 128 -> 128 (147,584) + conv1x1 3 -> 128 (512) = 151,680
    #   down block: 2 conv3x3 (147,584 each) + conv1x1 (16,512)                                     = 311,680
    #   2 plain blocks (identity shortcut): 2 * 2 * 147,584                                          = 590,336
    #   Linear 128 -> 1: 129
    assert count(discriminator(s, width=128)) == 151_680 + 311_680 + 590_336 + 129 == 1_053_825
    # conditional on 10 classes: 7 BatchNorms' 2*256 affine parameters become 2*10*256 class tables, the stem
    # takes a 10-dim label embedding beside z (10 x 10 + 10 x 4,096 stem weights), and the projection adds a
    # 10 x 128 embedding
    c = spec((3, 32, 32), latent_dim=128, num_classes=10)
    label_stem = 10 * 10 + 10 * 4096
    assert count(generator(c, width=256)) == 4_276_739 + 7 * (2 * 10 * 256 - 2 * 256) + label_stem == 4_350_055
    assert count(discriminator(c, width=128)) == 1_053_825 + 10 * 128 == 1_055_105


# -- conditioning ---------------------------------------------------------------------------

def _conditional_norms(net):
    return [m for m in net.modules() if isinstance(m, layers.ConditionalBatchNorm2d)]


def test_conditional_generator_uses_conditional_batchnorm_everywhere():
    g = generator(spec(num_classes=4))
    assert len(_conditional_norms(g)) == 2 * 3 + 1  # both norms of each block and the final one
    assert all(isinstance(m.norm, nn.BatchNorm2d) and not m.norm.affine for m in _conditional_norms(g))
    scales = torch.cat([m.scale.weight.flatten() for m in _conditional_norms(g)]).detach()
    assert scales.mean().item() == pytest.approx(1.0, abs=0.01) and scales.std().item() == pytest.approx(0.02, rel=0.3)
    assert not any(m.shift.weight.any() for m in _conditional_norms(g))
    plain = generator(spec())
    assert not _conditional_norms(plain) and sum(isinstance(m, nn.BatchNorm2d) for m in plain.modules()) == 7


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_conditional_generator_depends_on_the_label(mode):
    g = generator(spec(num_classes=4)).train(mode == "train")
    z = torch.randn(1, LATENT).repeat(2, 1)  # the same noise twice, as the engine checks before training
    with torch.no_grad():
        images = g(z, torch.tensor([0, 3]))
        assert not torch.equal(images[0], images[1])  # from init: class scales N(1, 0.02), not all ones
        assert (images[0] - images[1]).abs().max() > 1e-4
        for m in _conditional_norms(g):  # as training makes them: a different row per class
            nn.init.normal_(m.scale.weight, 1.0, 0.2)
            nn.init.normal_(m.shift.weight, 0.0, 0.2)
        images = g(z, torch.tensor([0, 3]))
    assert (images[0] - images[1]).abs().max() > 1e-2


def test_conditional_batchnorm_uses_the_samples_class_row():
    g = generator(spec(num_classes=4)).eval()  # running statistics: one sample's output depends on it alone
    z, labels = torch.randn(6, LATENT), torch.tensor([0, 1, 2, 3, 2, 1])
    with torch.no_grad():
        before = g(z, labels)
        for m in _conditional_norms(g):
            m.scale.weight[2] = 3.0
        after = g(z, labels)
    changed = (before - after).flatten(1).abs().amax(dim=1) > 1e-4
    assert changed.tolist() == [label == 2 for label in labels.tolist()]


def test_generator_conditioning_calls():
    z, labels = torch.randn(2, LATENT), torch.tensor([1, 2])
    g = generator(spec(num_classes=3))
    with pytest.raises(ValueError, match=r"conditioned on 3 classes.*generator\(z, condition\)"):
        g(z)
    plain = generator(spec()).eval()
    assert torch.equal(plain(z, labels), plain(z)), "an unconditional generator ignores labels"


def _features(d, x):
    seen = []
    handle = d.linear.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    out = d(x)
    handle.remove()
    return out, seen[0]


def test_projection_adds_the_labels_embedding_times_the_features():
    d = discriminator(spec(num_classes=5), spectral_norm=False)
    x = torch.randn(4, 3, 32, 32)
    labels = torch.tensor([0, 4, 2, 2])
    with torch.no_grad():
        scores, features = _features(d, x)
        projected = d(x, labels)
        other = d(x, (labels + 1) % 5)
    assert projected.shape == (4,)
    assert torch.allclose(projected, scores + (d.condition.embed.weight[labels] * features).sum(1), atol=1e-5)
    assert (projected - other).abs().min() > 1e-4, "the score changes with the label"


def test_projection_gradient_reaches_the_labels_embedding_row_only():
    # spectral norm off: its sigma couples every row of the embedding, the projection itself does not
    d = discriminator(spec(num_classes=5), spectral_norm=False)
    d(torch.randn(3, 3, 32, 32), torch.tensor([1, 3, 1])).sum().backward()
    grad = d.condition.embed.weight.grad
    assert grad[[1, 3]].abs().amin(dim=1).gt(0).all()
    assert torch.equal(grad[[0, 2, 4]], torch.zeros_like(grad[[0, 2, 4]]))


def test_acgan_returns_scores_and_the_weighted_classification_loss():
    d = discriminator(spec(num_classes=5), conditioning="acgan", acgan_weight=0.5, spectral_norm=False)
    x, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 4, 2, 2])
    with torch.no_grad():
        scores, features = _features(d, x)
        out = d(x, labels)
    assert isinstance(out, tuple) and len(out) == 2
    acgan_scores, loss = out
    assert acgan_scores.shape == (4,) and torch.allclose(acgan_scores, scores)  # ACGAN leaves the score alone
    assert loss.shape == ()
    logits = features @ d.condition.classify.weight.T + d.condition.classify.bias
    assert torch.allclose(loss, 0.5 * F.cross_entropy(logits, labels), atol=1e-6)


def test_discriminator_without_labels_gives_scores():
    d = discriminator(spec(num_classes=5))
    assert d(torch.randn(2, 3, 32, 32)).shape == (2,)
    plain = discriminator(spec()).eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(plain(x, torch.tensor([1, 2])), plain(x)), "an unconditional discriminator ignores labels"


def test_scores_are_per_sample_as_gradient_penalties_need():
    d = discriminator(spec((1, 32, 32), needs=Needs(discriminator_batchnorm=False, input_gradients=True)))
    x = torch.randn(4, 1, 32, 32, requires_grad=True)
    with torch.no_grad():  # eval: spectral norm's power iteration stands still between the two calls
        d.eval()
        assert torch.allclose(d(x)[:1], d(x[:1]), atol=1e-5)
    scores = d.train()(x)
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    grad.square().sum().backward()  # R1's double backward runs through the residual blocks
    assert d.linear.parametrizations.weight.original.grad is not None


# -- refusals -------------------------------------------------------------------------------

@pytest.mark.parametrize(("shape", "tail"), [
    ((1, 28, 28), "got 28x28 images (use --image-size 32)"),
    ((3, 16, 16), "got 16x16 images (use --image-size 32)"),
    ((3, 48, 48), "got 48x48 images (use --image-size 32 or 64)"),
    ((3, 32, 16), "got 32x16 images"),
    ((2, 32, 32), "got images with 2 channels"),
    ((2,), "got samples of shape (2,), which are not images"),
])
def test_unsupported_shapes_are_refused_by_both_pieces(shape, tail):
    message = f"resnet needs square images of 32 or 64 px with 1 or 3 channels; {tail}"
    for build, params in ((resnet.build_generator, resnet.GeneratorParams()),
                          (resnet.build_discriminator, resnet.DiscriminatorParams())):
        with pytest.raises(IncompatibleError) as error:
            build(params, spec(shape))
        assert str(error.value) == message


def test_latent_codes_refused():
    with pytest.raises(IncompatibleError, match="judges images.*latent codes"):
        discriminator(spec(needs=Needs(discriminator_input="latent")))


def test_parameter_checks():
    with pytest.raises(ValueError, match="width must be at least 1"):
        resnet.GeneratorParams(width=0)
    with pytest.raises(ValueError, match="width must be at least 1"):
        resnet.DiscriminatorParams(width=0)
    with pytest.raises(ValueError, match="acgan_weight must be > 0"):
        resnet.DiscriminatorParams(acgan_weight=0.0)


# -- spectral norm --------------------------------------------------------------------------

def _weighted(net):
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]


@pytest.mark.parametrize("conditioning", ["projection", "acgan"])
def test_spectral_norm_on_every_layer_including_the_conditioning(conditioning):
    d = discriminator(spec(num_classes=4), conditioning=conditioning)
    weighted = _weighted(d)
    # optimized (3 convs) + down (3) + 2 plain (2 each) + linear + the embedding or the classifier
    assert len(weighted) == 3 + 3 + 2 * 2 + 1 + 1
    assert all(parametrize.is_parametrized(m, "weight")
               and type(m.parametrizations.weight[0]).__name__ == "_SpectralNorm" for m in weighted)
    conditioning_layer = d.condition.embed if conditioning == "projection" else d.condition.classify
    assert parametrize.is_parametrized(conditioning_layer, "weight")
    keys = d.state_dict().keys()  # the power-iteration vectors are buffers: checkpoints carry them
    assert sum(k.endswith(("weight.0._u", "weight.0._v")) for k in keys) == 2 * len(weighted)


def test_spectral_norm_off():
    d = discriminator(spec(num_classes=4), spectral_norm=False)
    assert not any(parametrize.is_parametrized(m) for m in d.modules())
    assert not any("parametrizations" in key for key in d.state_dict())


def test_spectral_norm_keeps_the_init():
    torch.manual_seed(1)
    plain = discriminator(spec(), spectral_norm=False)
    torch.manual_seed(1)
    normalised = discriminator(spec())
    for a, b in zip(_weighted(plain), _weighted(normalised)):
        assert torch.equal(a.weight, b.parametrizations.weight.original)


# -- registration ---------------------------------------------------------------------------

def _check_registered(registry):
    g, d = registry.get("generator", "resnet"), registry.get("discriminator", "resnet")
    assert g.conditional is True and d.conditional is True
    assert g.params is resnet.GeneratorParams and d.params is resnet.DiscriminatorParams
    arch = registry.get("architecture", "resnet")
    assert (arch.generator, arch.discriminator, arch.latent_dim) == ("resnet", "resnet", 128)


def test_registers_conditional_pieces():
    from gan_registry.testing import isolated_registry

    _check_registered(isolated_registry(("resnet", resnet)))


def test_installed_entry_point():
    import gan_registry

    registry = gan_registry.load_plugins()
    _check_registered(registry)
    assert registry.get("generator", "resnet").origin.distribution == "gan-registry-resnet"


def test_arch_width_sets_both_pieces_in_a_checked_run():
    from gan_registry.testing import build, isolated_registry
    from gan_registry_objectives import hinge
    from gan_registry_toy_datasets import digits

    # Only the plugins this needs: other installed plugins are not this test's business.
    registry = isolated_registry(("resnet", resnet), ("hinge", hinge), ("digits", digits))
    built = build(registry, arch="resnet", objective="hinge", dataset="digits", image_size=32,
                  params={"arch": {"width": "8"}})
    assert built.params["generator"].width == built.params["discriminator"].width == 8
    assert built.spec.latent_dim == 128 and built.spec.sample_shape == (1, 32, 32)
    images = built.networks["generator"](torch.randn(2, 128))
    assert built.networks["discriminator"](images).shape == (2,)
