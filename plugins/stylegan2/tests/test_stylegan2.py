"""stylegan2 pieces: config-F parameter counts against the official code, equalised learning rate, demodulation,
path-length regularisation against its closed form, style mixing, truncation in w, conditioning, shapes and
refusals, registration, a real `gan run`, torch.compile and bf16 autocast."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import gan_registry_stylegan2 as sg
from gan_registry import IncompatibleError, NetworkSpec, Needs
from gan_registry_stylegan2 import _nets

LATENT = 16
TINY = {"channel_base": 128, "channel_max": 8}  # 8 channels up to 16 px, 4 at 32, 2 at 64: the file runs in seconds


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


def spec(shape=(1, 16, 16), num_classes=None, needs=Needs(), latent_dim=LATENT, value_range=(-1.0, 1.0)):
    return NetworkSpec(tuple(shape), latent_dim, value_range, needs=needs, num_classes=num_classes)


def generator(s=None, **params):
    return sg.build_generator(sg.GeneratorParams(**{**TINY, **params}), s or spec())


def discriminator(s=None, **params):
    return sg.build_discriminator(sg.DiscriminatorParams(**{**TINY, **params}), s or spec())


def count(net):
    return sum(p.numel() for p in net.parameters())


# -- shapes, ranges, refusals ---------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("side", [16, 32, 64])
def test_shapes_and_range(side, channels):
    s = spec((channels, side, side))
    g, d = generator(s), discriminator(s)
    assert g.num_ws == 2 * int(math.log2(side)) - 2
    for mode in (True, False):
        images = g.train(mode)(torch.randn(3, LATENT))
        assert images.shape == (3, channels, side, side)
        assert images.min() >= -1 and images.max() <= 1
        assert d(images).shape == (3,)


def test_value_ranges():
    z = torch.randn(2, LATENT)
    images = generator(spec(value_range=(0.0, 1.0)))(z)
    assert images.min() >= 0 and images.max() <= 1
    g = generator(spec(value_range=None)).eval()
    assert torch.equal(g(z), g.synthesis(g.ws(z), "const")), "unbounded data gets no output activation"


@pytest.mark.parametrize(("shape", "tail"), [
    ((1, 24, 24), "got 24x24 images (use --image-size 16 or 32)"),
    ((3, 8, 8), "got 8x8 images (use --image-size 16)"),
    ((3, 2048, 2048), "got 2048x2048 images (use --image-size 1024)"),
    ((3, 32, 16), "got 32x16 images"),
    ((2, 32, 32), "got images with 2 channels"),
    ((2,), "got samples of shape (2,), which are not images"),
])
def test_unsupported_shapes_are_refused_by_both_pieces(shape, tail):
    message = f"stylegan2 needs square images of 16, 32, 64, 128, 256, 512 or 1024 px with 1 or 3 channels; {tail}"
    for build in (generator, discriminator):
        with pytest.raises(IncompatibleError) as error:
            build(spec(shape))
        assert str(error.value) == message


def test_other_refusals_and_parameter_checks():
    with pytest.raises(IncompatibleError, match="judges images.*latent codes"):
        discriminator(spec(needs=Needs(discriminator_input="latent")))
    with pytest.raises(IncompatibleError, match="channel_base 32 leaves no channels at 64 px"):
        generator(spec((1, 64, 64)), channel_base=32)
    with pytest.raises(IncompatibleError, match="mbstd_channels 3 must divide the 8 channels"):
        discriminator(mbstd_channels=3)
    for params, message in [({"channel_max": 0}, "channel_max must be > 0"),
                            ({"style_mixing": 1.5}, "style_mixing is a probability"),
                            ({"pl_weight": -1.0}, "pl_weight must be >= 0"),
                            ({"pl_interval": 0}, "pl_interval must be > 0"),
                            ({"w_dim": 0}, "w_dim must be > 0"),
                            ({"mapping_lr_mult": 0.0}, "mapping_lr_mult must be > 0")]:
        with pytest.raises(ValueError, match=message):
            sg.GeneratorParams(**params)
    with pytest.raises(ValueError, match="acgan_weight must be > 0"):
        sg.DiscriminatorParams(acgan_weight=0.0)
    with pytest.raises(ValueError, match="mbstd_group_size must be > 0"):
        sg.DiscriminatorParams(mbstd_group_size=0)


# -- the paper's configuration --------------------------------------------------------------

# Config F (channel_base 32768, channel_max 512, z = w = 512, 8 mapping layers, 3 channels), counted from
# NVlabs/stylegan2-ada-pytorch at commit d72cc7d041b42ec8e806021a205ed9349f87c6a4: its training/networks.py
# Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=R, img_channels=3) and Discriminator(c_dim=0, ...)
# instantiated on a CPU. Both count parameters only: the per-layer `noise_const` maps and the resampling filters
# are buffers there and here (noise_const: 174,736 values at 256 px, 2,796,176 at 1024).
OFFICIAL = {256: (30_034_338, 28_864_129), 1024: (30_370_060, 29_012_513)}
OURS = {256: (30_034_338, 28_864_129), 1024: (30_370_060, 29_012_513)}  # the same: no parameter left out
MAPPING_F = 8 * (512 * 512 + 512)  # 2,101,248 at any resolution


@pytest.mark.parametrize("side", [256, 1024])
def test_config_f_parameter_counts_equal_the_official_code(side):
    s = spec((3, side, side), latent_dim=512)
    config_f = {"channel_base": 32768, "channel_max": 512}
    with torch.device("meta"):  # no 30M parameters allocated
        g = sg.build_generator(sg.GeneratorParams(**config_f), s)
        d = sg.build_discriminator(sg.DiscriminatorParams(**config_f), s)
    assert (count(g), count(d)) == OURS[side] == OFFICIAL[side]
    assert count(g.mapping) == MAPPING_F and g.w_dim == 512 and len(g.mapping.layers) == 8
    assert g.num_ws == {256: 14, 1024: 18}[side]
    # Conditional on 10 classes the generator still matches (official: 30,302,114 at 256 px): the one-hot label's
    # FC embedding (10 x 512 + 512) and the first mapping layer's 512 more inputs. The discriminator does not: it
    # projects on layers.ClassCondition's 10 x 512 embedding where the official one maps the label through a
    # second 8-layer mapping network to a 512-d cmap (31,233,152 at 256 px).
    if side == 256:
        with torch.device("meta"):
            conditional = sg.build_generator(sg.GeneratorParams(**config_f), spec((3, 256, 256), 10, latent_dim=512))
            conditional_d = sg.build_discriminator(sg.DiscriminatorParams(**config_f),
                                                   spec((3, 256, 256), 10, latent_dim=512))
        assert count(conditional) == OURS[256][0] + 10 * 512 + 512 + 512 * 512 == 30_302_114
        assert count(conditional_d) == OURS[256][1] + 10 * 512


def test_noise_const_maps_are_buffers_in_the_state_dict():
    g = generator(spec((1, 32, 32)))
    keys = g.state_dict().keys()
    assert sum(k.endswith("noise_const") for k in keys) == 2 * 4 - 1  # one per synthesis layer
    assert {"w_avg", "pl_mean"} <= set(keys)
    assert not any(k.endswith("fir") for k in keys), "the fixed filters are not checkpointed"


# -- equalised learning rate, demodulation ----------------------------------------------------

def test_equalised_learning_rate():
    g = generator(w_dim=64)
    layer = g.mapping.layers[1]  # 64 -> 64, lr multiplier 0.01
    assert layer.lr_mult == 0.01
    assert layer.weight_gain == pytest.approx(0.01 / math.sqrt(64))
    # stored N(0, 1/lr_mult^2): std 100 (4,096 draws: the estimate is within ~1.1%)
    assert layer.weight.std().item() == pytest.approx(100, rel=0.06) and abs(layer.weight.mean().item()) < 5
    x = torch.randn(5, 64)
    expected = F.leaky_relu(x @ (layer.weight * 0.01 / 8).T + layer.bias * 0.01, 0.2) * math.sqrt(2)
    assert torch.allclose(layer(x), expected, atol=1e-5)
    # the gradient reaching the stored weight is the effective weight's, scaled by the runtime gain
    effective = (layer.weight * layer.weight_gain).detach().requires_grad_()
    F.leaky_relu(F.linear(x, effective, layer.bias * 0.01), 0.2).sum().backward()
    (F.leaky_relu(F.linear(x, layer.weight * layer.weight_gain, layer.bias * 0.01), 0.2)).sum().backward()
    assert torch.allclose(layer.weight.grad, effective.grad * layer.weight_gain)

    d = discriminator(spec((1, 32, 32)), channel_base=2048, channel_max=64)
    conv = d.blocks[0].conv0  # 64 -> 64, 3x3
    assert conv.weight_gain == pytest.approx(1 / math.sqrt(64 * 9))
    assert conv.weight.std().item() == pytest.approx(1, rel=0.03)  # 36,864 draws of N(0, 1)
    synthesis = g.synthesis.blocks[1].conv0
    assert synthesis.affine.weight_gain == pytest.approx(1 / math.sqrt(64))
    assert torch.equal(synthesis.affine.bias, torch.ones_like(synthesis.affine.bias)), "styles start at 1"


def test_demodulation_keeps_unit_variance():
    torch.manual_seed(1)
    weight = torch.randn(64, 64, 3, 3)
    styles = torch.randn(8, 64) * 3 + 1  # random styles, far from 1
    x = torch.randn(8, 64, 12, 12)
    out = _nets.modulated_conv2d(x, weight, styles)[..., 1:-1, 1:-1]  # the border sees zero padding
    assert out.std().item() == pytest.approx(1, abs=0.05)
    # per sample and output channel too, not only on average
    assert out.std(dim=(2, 3)).mean().item() == pytest.approx(1, abs=0.1)
    plain = _nets.modulated_conv2d(x, weight, styles, demodulate=False)[..., 1:-1, 1:-1]
    assert plain.std().item() > 10, "without demodulation the styles scale the output"


@pytest.mark.parametrize("up", [False, True])
def test_modulated_conv_equals_a_per_sample_weight(up):
    torch.manual_seed(2)
    n, c_in, c_out = 3, 5, 4
    x, weight, styles = torch.randn(n, c_in, 6, 6), torch.randn(c_out, c_in, 3, 3), torch.randn(n, c_in)
    fir = _nets.fir_kernel()
    ours = _nets.modulated_conv2d(x, weight, styles, up=up, fir=fir)
    w = weight[None] * styles[:, None, :, None, None]  # (N, O, I, 3, 3)
    w = w * (w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
    if up:  # the grouped form: one transposed convolution with each sample's weight, then the blur
        grouped = F.conv_transpose2d(x.reshape(1, n * c_in, 6, 6), w.transpose(1, 2).reshape(n * c_in, c_out, 3, 3),
                                     stride=2, groups=n).reshape(n, c_out, 13, 13)
        reference = _nets.blur(grouped, fir, pad=1, gain=4.0)
    else:
        reference = F.conv2d(x.reshape(1, n * c_in, 6, 6), w.reshape(n * c_out, c_in, 3, 3), padding=1,
                             groups=n).reshape(n, c_out, 6, 6)
    assert ours.shape == reference.shape == (n, c_out, 12 if up else 6, 12 if up else 6)
    assert torch.allclose(ours, reference, atol=1e-5)


def test_resampling_filters():
    fir = _nets.fir_kernel()
    assert torch.allclose(fir, torch.outer(torch.tensor([1., 3, 3, 1]), torch.tensor([1., 3, 3, 1])) / 64)
    x = torch.ones(1, 2, 8, 8)
    up, down = _nets.upsample(x, fir), _nets.downsample(x, fir)
    assert up.shape == (1, 2, 16, 16) and down.shape == (1, 2, 4, 4)
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.ones(1, 2, 12, 12))  # gain 4: a flat image stays flat
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.ones(1, 2, 2, 2))


# -- path-length regularisation -------------------------------------------------------------

def test_path_lengths_of_a_linear_synthesis_have_the_closed_form():
    """image = A w (per layer l: images += A_l w_l): J is A, so the length of y is sqrt(mean_l |A_l^T y|^2)."""
    torch.manual_seed(3)
    n, num_ws, w_dim, c, h = 4, 3, 5, 2, 6
    a = torch.randn(num_ws, w_dim, c, h, h, dtype=torch.float64)
    ws = torch.randn(n, num_ws, w_dim, dtype=torch.float64, requires_grad=True)

    def synthesis(ws):
        return torch.einsum("nlk,lkchw->nchw", ws, a)

    y = torch.randn(n, c, h, h, dtype=torch.float64) / h
    lengths = _nets.path_lengths(synthesis(ws), ws, y)
    closed = torch.einsum("lkchw,nchw->nlk", a, y).square().sum(2).mean(1).sqrt()
    assert torch.allclose(lengths, closed)
    jacobian = torch.autograd.functional.jacobian(synthesis, ws.detach())  # (n, c, h, w, n, L, K)
    per_sample = torch.stack([torch.einsum("chw,chwlk->lk", y[i], jacobian[i, :, :, :, i]) for i in range(n)])
    assert torch.allclose(lengths, per_sample.square().sum(2).mean(1).sqrt())
    # and its expectation over y ~ N(0, I / (H W)): E |J^T y|^2 = |J|_F^2 / (H W), the same for every sample here
    many = torch.randn(20000, c, h, h, dtype=torch.float64) / h
    mean_square = torch.einsum("lkchw,nchw->nlk", a, many).square().sum(2).mean(1).mean()
    assert mean_square.item() == pytest.approx(a.square().sum().item() / (h * h) / num_ws, rel=0.03)


def test_regularization_equals_the_jacobian_of_the_generator():
    g = generator(spec((1, 16, 16)), pl_batch_shrink=2, style_mixing=0.0).eval()  # const noise: deterministic
    z = torch.randn(4, LATENT)
    torch.manual_seed(5)
    terms = g.regularization(z, None, 8)
    assert set(terms) == {"path_length"} and terms["path_length"].shape == ()
    # the same draw of y: the only random numbers a generator in eval mode takes here
    torch.manual_seed(5)
    y = torch.randn(2, 1, 16, 16) / 16
    ws = g.ws(z[:2]).detach()  # pl_batch_shrink 2: half the batch
    jacobian = torch.autograd.functional.jacobian(lambda w: g.synthesize(w), ws, vectorize=True)
    lengths = torch.stack([torch.einsum("chw,chwlk->lk", y[i], jacobian[i, :, :, :, i]) for i in range(2)]
                          ).square().sum(2).mean(1).sqrt()
    pl_mean = 0.01 * lengths.mean()  # from 0, by pl_decay
    assert torch.allclose(g.pl_mean, pl_mean, rtol=1e-4)
    expected = (lengths - pl_mean).square().mean() * 2.0 * 4  # pl_weight x pl_interval
    assert torch.allclose(terms["path_length"], expected, rtol=1e-4)


def test_regularization_is_lazy_and_trains_the_generator_without_host_syncs():
    from gan_registry.testing import count_host_syncs

    g = generator(spec((1, 16, 16))).train()
    z = torch.randn(6, LATENT)
    assert [g.regularization(z, None, step) is None for step in range(6)] == [False, True, True, True, False, True]
    assert generator(pl_weight=0.0).regularization(z, None, 0) is None
    g.pl_mean.zero_()
    with count_host_syncs() as syncs:
        terms = g.regularization(z, None, 0)
        terms["path_length"].backward()  # the double backward, on the CPU
    assert not syncs, syncs
    assert g.pl_mean.item() > 0 and not g.pl_mean.requires_grad
    assert g.mapping.layers[0].weight.grad.abs().sum() > 0 and g.synthesis.blocks[1].conv0.weight.grad is not None
    assert torch.isfinite(terms["path_length"])
    c = generator(spec((1, 16, 16), num_classes=3)).train()
    assert c.regularization(z, torch.tensor([0, 1, 2, 0, 1, 2]), 0)["path_length"].shape == ()
    with pytest.raises(ValueError, match="conditioned on 3 classes"):
        c.regularization(z, None, 0)


# -- style mixing, w_avg, truncation ----------------------------------------------------------

def _crossover(ws, w1):
    """The first layer whose w is not w1's, and the w the layers from there share (None if all are w1's)."""
    same = (ws == w1[:, None]).all(dim=2).all(dim=0)  # (num_ws,)
    if same.all():
        return None, None
    k = int((~same).nonzero()[0])
    assert same[:k].all() and not same[k:].any(), "one crossover per batch"
    assert (ws[:, k:] == ws[:, k:k + 1]).all(), "the layers after it share one w"
    return k, ws[:, k]


def test_style_mixing_switches_layers_at_the_crossover():
    g = generator(spec((1, 32, 32)), style_mixing=1.0).train()
    z = torch.randn(3, LATENT)
    with torch.no_grad():
        w1 = g.mapping(z, None)
        cutoffs = set()
        for seed in range(12):
            torch.manual_seed(seed)
            ws = g.ws(z)
            k, w2 = _crossover(ws, w1)
            assert k is not None and 1 <= k < g.num_ws
            cutoffs.add(k)
            # the second w is the mapping of fresh noise, drawn after the crossover and the coin (global RNG)
            torch.manual_seed(seed)
            assert int(torch.randint(1, g.num_ws, ())) == k
            torch.rand(())
            assert torch.equal(w2, g.mapping(torch.randn_like(z), None))
        assert len(cutoffs) > 2
        # probability 0, or eval mode: every layer gets w1
        unmixed = generator(spec((1, 32, 32)), style_mixing=0.0).train()
        assert torch.equal(unmixed.ws(z), unmixed.mapping(z, None)[:, None].expand(-1, g.num_ws, -1))
        assert _crossover(g.eval().ws(z), w1) == (None, None)
        half = generator(spec((1, 32, 32)), style_mixing=0.5).train()
        mixed = [_crossover(half.ws(z), half.mapping(z, None))[0] is not None for _ in range(40)]
        assert 5 < sum(mixed) < 35


def test_w_avg_follows_w_while_training_only():
    g = generator()
    z = torch.randn(5, LATENT)
    assert not g.w_avg.any()
    with torch.no_grad():
        g.eval()(z)
        assert not g.w_avg.any()
        w = g.mapping(z, None)
        g.train().ws(z)
    assert torch.allclose(g.w_avg, 0.005 * w.mean(0), atol=1e-6)


def test_truncation_in_w():
    g = generator(spec((3, 16, 16)))
    with torch.no_grad():
        g.w_avg.copy_(torch.randn(g.w_dim))
        g.eval()
        z = torch.randn(4, LATENT)
        average = g.truncated(z, 0.0)
        assert torch.allclose(average, average[:1].expand_as(average)), "psi 0: every z gives w_avg's image"
        assert torch.allclose(average[:1], g.synthesize(g.w_avg.expand(1, g.num_ws, -1)), atol=1e-6)
        assert torch.equal(g.truncated(z, 1.0), g(z)), "psi 1: no truncation"
        w = g.mapping(z, None)
        half = g.ws(z, psi=0.5)
        assert torch.allclose(half, (g.w_avg + 0.5 * (w - g.w_avg))[:, None].expand_as(half), atol=1e-6)
        assert torch.allclose(g.truncated(z, 0.5), g.synthesize(half), atol=1e-6)
        before = g.w_avg.clone()
        g.train().truncated(z, 0.5)  # sampling: the average stays where it is
        assert torch.equal(g.w_avg, before)


# -- conditioning ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["train", "eval"])
def test_conditional_generator_depends_on_the_label(mode):
    g = generator(spec((1, 16, 16), num_classes=4)).train(mode == "train")
    z = torch.randn(1, LATENT).repeat(2, 1)  # the same noise twice, as the engine checks before training
    with torch.no_grad():
        torch.manual_seed(0)
        a = g(z, torch.tensor([0, 0]), noise_mode="const")
        torch.manual_seed(0)
        b = g(z, torch.tensor([0, 3]), noise_mode="const")
    assert torch.equal(a[0], b[0]) and (a[1] - b[1]).abs().max() > 1e-3


def test_generator_conditioning_calls():
    z, labels = torch.randn(2, LATENT), torch.tensor([1, 2])
    g = generator(spec(num_classes=3))
    with pytest.raises(ValueError, match=r"conditioned on 3 classes.*generator\(z, condition\)"):
        g(z)
    with pytest.raises(ValueError, match="conditioned on 3 classes"):
        g.truncated(z, 0.5)
    assert g.truncated(z, 0.5, labels).shape == (2, 1, 16, 16)
    plain = generator().eval()
    assert torch.equal(plain(z, labels), plain(z)), "an unconditional generator ignores labels"
    with pytest.raises(ValueError, match="unknown noise_mode"):
        plain(z, noise_mode="loud")


@pytest.mark.parametrize("conditioning", ["projection", "acgan"])
def test_conditional_discriminator_takes_labels(conditioning):
    d = discriminator(spec(num_classes=5), conditioning=conditioning)
    x, labels = torch.randn(4, 1, 16, 16), torch.tensor([0, 4, 2, 2])
    with torch.no_grad():
        out = d(x, labels)
        other = d(x, (labels + 1) % 5)
        unlabelled = d(x)
    assert unlabelled.shape == (4,)
    if conditioning == "acgan":
        scores, loss = out
        assert scores.shape == (4,) and loss.shape == () and torch.equal(scores, unlabelled)
    else:
        assert out.shape == (4,) and (out - other).abs().min() > 1e-5, "the score changes with the label"
    plain = discriminator()
    assert torch.equal(plain(x, labels), plain(x)), "an unconditional discriminator ignores labels"


# -- minibatch standard deviation -------------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 2, 3, 6, 8])
def test_minibatch_stddev_takes_any_batch(batch):
    d = discriminator()
    assert d(torch.randn(batch, 1, 16, 16)).shape == (batch,)
    layer = _nets.MinibatchStd(4, 1)
    x = torch.randn(batch, 8, 4, 4)
    out = layer(x)
    g = math.gcd(4, batch)
    groups = x.reshape(g, -1, 8, 4, 4)
    expected = ((groups.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3)))  # one value per group
    assert out.shape == (batch, 9, 4, 4) and torch.equal(out[:, :8], x)
    assert torch.allclose(out[:, 8, 0, 0], expected.repeat(g), atol=1e-6)


def test_scores_are_per_sample_without_the_minibatch_layer():
    d = discriminator(mbstd_channels=0)
    x = torch.randn(4, 1, 16, 16, requires_grad=True)
    assert torch.allclose(d(x)[:1], d(x[:1]), atol=1e-6)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    grad.square().sum().backward()  # R1's double backward through the blurs and residual blocks
    assert d.blocks[0].conv0.weight.grad is not None


# -- registration, real runs, compile, autocast -------------------------------------------------

def _check_registered(registry):
    g, d = registry.get("generator", "stylegan2"), registry.get("discriminator", "stylegan2")
    assert g.conditional is True and d.conditional is True
    assert g.params is sg.GeneratorParams and d.params is sg.DiscriminatorParams
    arch = registry.get("architecture", "stylegan2")
    assert (arch.generator, arch.discriminator, arch.latent_dim) == ("stylegan2", "stylegan2", 128)
    assert arch.suggests == {"steps": 600, "lr_scale": 10, "objective.betas": "0, 0.99", "objective.r1": 0.0032,
                             "objective.penalty_every": 16}


def test_registers_conditional_pieces():
    from gan_registry.testing import isolated_registry

    _check_registered(isolated_registry(("stylegan2", sg)))


def test_installed_entry_point():
    import gan_registry

    registry = gan_registry.load_plugins()
    _check_registered(registry)
    assert registry.get("generator", "stylegan2").origin.distribution == "gan-registry-stylegan2"


def test_arch_widths_set_both_pieces_and_24_px_is_refused():
    from gan_registry.testing import build, invoke_gan, isolated_registry
    from gan_registry_objectives import gan
    from gan_registry_toy_datasets import digits

    registry = isolated_registry(("stylegan2", sg), ("gan", gan), ("digits", digits))
    built = build(registry, arch="stylegan2", objective="gan", dataset="digits", image_size=16, latent_dim=LATENT,
                  conditional=True, params={"arch": {"channel_base": "64", "channel_max": "4"}})
    assert built.params["generator"].channel_max == built.params["discriminator"].channel_max == 4
    assert built.spec.sample_shape == (1, 16, 16) and built.spec.num_classes == 10
    result = invoke_gan("run", "--arch", "stylegan2", "--objective", "gan", "--dataset", "digits",
                        "--image-size", "24", "--steps", "1")
    assert result.exit_code == 2
    assert "stylegan2 needs square images" in result.output and "got 24x24 images (use --image-size 16 or 32)" \
        in result.output


def test_a_real_gan_run_writes_a_checkpoint(tmp_path):
    from gan_registry.testing import run_gan

    out = tmp_path / "run"
    result = run_gan("run", "--arch", "stylegan2", "--objective", "gan", "--dataset", "digits", "--image-size", "16",
                     "--steps", "3", "--batch-size", "8", "--latent-dim", str(LATENT), "-p", "arch.channel_base=64",
                     "-p", "arch.channel_max=4", "-p", "generator.mapping_layers=2", "--seed", "0", "--out", out,
                     "--no-progress", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert (out / "checkpoints" / "last.pt").exists()
    # the engine called the generator's regularization (step 0 is a path-length step) and logged its term
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 3 and math.isfinite(last["generator/path_length"])


def test_torch_compile_and_bf16_autocast_forward():
    g = generator(spec((1, 16, 16)), mapping_layers=2).eval()
    z = torch.randn(2, LATENT)
    with torch.no_grad():
        eager = g(z)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = g(z)
        assert half.shape == eager.shape and torch.isfinite(half).all()
        assert (half.float() - eager).abs().max() < 0.1
        try:
            compiled = torch.compile(g, backend="aot_eager", fullgraph=True)
            out = compiled(z)
        except RuntimeError as error:  # pragma: no cover - a torch without a working compile stack
            if "compile" in str(error).lower() and "not supported" in str(error).lower():
                pytest.skip(f"torch.compile unavailable: {error}")
            raise
    assert torch.allclose(out, eager, atol=1e-5)
