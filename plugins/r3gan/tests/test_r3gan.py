"""r3gan pieces: the official presets' parameter counts, [1,2,1] resampling, fix-up init, shapes and refusals, class
conditioning, real `gan run`s, torch.compile and bf16 autocast."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import gan_registry_r3gan as r3gan
from gan_registry_r3gan import _nets
from gan_registry import IncompatibleError, NetworkSpec, Needs, ParameterError

LATENT = 16
TINY = 8  # small nets: the whole file runs in seconds on a busy 2-core machine


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


def tiny(side, width=TINY, **params):
    return {"widths": (width,) * r3gan.stage_count(side), **params}


def generator(s, **params):
    return r3gan.build_generator(r3gan.GeneratorParams(**(params or tiny(s.sample_shape[-1]))), s)


def discriminator(s, **params):
    return r3gan.build_discriminator(r3gan.DiscriminatorParams(**(params or tiny(s.sample_shape[-1]))), s)


def count(net):
    return sum(p.numel() for p in net.parameters())


# -- the official presets -------------------------------------------------------------------

# Parameter counts of brownvc/R3GAN's own networks (commit 19a7ddf463fbac2bd39b4c1c73d63f1c441c7403): R3GAN.Networks.
# Generator(64, WidthPerStage, CardinalityPerStage, BlocksPerStage, 2) and Discriminator(the lists reversed, ...) with
# each train.py preset's lists, built on the CPU from a scratch copy of the repository and counted; conditional with
# ConditionDimension = the classes and ConditionEmbeddingDimension = 64 (G) and WidthPerStage[0] (D), as train.py's
# conditional presets set them. At 3 channels ours are the same layers: the counts are equal.
#   (G, D, G with 10 classes, D with 10 classes)
OFFICIAL = {
    "cifar10": (20_732_160, 20_683_776, 20_781_952, 21_280_512),
    "ffhq-64": (22_429_824, 22_381_440, 22_479_616, 22_978_176),
    "ffhq-256": (23_057_952, 23_009_568, 23_107_744, 23_606_304),
    "imagenet-32": (82_752_000, 82_655_232, 82_850_944, 85_028_352),
    "imagenet-64": (103_408_128, 103_311_360, 103_507_072, 105_684_480),
}
OFFICIAL_IMAGENET_32_1000_CLASSES = (82_914_304, 86_548_992)


def _preset_pair(preset, num_classes=None, side=None):
    side = side or r3gan.PRESETS[preset].side
    s = spec((3, side, side), num_classes=num_classes, latent_dim=r3gan.LATENT_DIM)
    with torch.device("meta"):  # no memory, no init cost: counting only
        return (r3gan.build_generator(r3gan.GeneratorParams(preset=preset), s),
                r3gan.build_discriminator(r3gan.DiscriminatorParams(preset=preset), s))


@pytest.mark.parametrize("preset", list(OFFICIAL))
def test_preset_parameter_counts_equal_the_official_networks(preset):
    g, d = _preset_pair(preset)
    gc, dc = _preset_pair(preset, num_classes=10)
    assert (count(g), count(d), count(gc), count(dc)) == OFFICIAL[preset]


def test_cifar10_parameter_count_by_hand():
    # widths 768 at 4 stages, 2 blocks each, 96 groups, expansion 2 (1536 expanded channels), latent 64:
    #   block: 1x1 768 -> 1536 + grouped 3x3 (1536 x 16 x 9) + 1x1 1536 -> 768 + 2 x 1536 activation biases
    block = 768 * 1536 + 1536 * 16 * 9 + 1536 * 768 + 2 * 1536
    assert block == 2_583_552
    basis = 768 * 4 * 4 + 64 * 768  # the learned 4x4 basis and its bias-free linear map of z
    # no transition convs (the width never changes), aggregation 1x1 768 -> 3
    assert 8 * block + basis + 768 * 3 == OFFICIAL["cifar10"][0]
    # extraction 1x1 3 -> 768; depthwise 4x4 basis + Linear 768 -> 1
    assert 3 * 768 + 8 * block + 768 * 16 + 768 == OFFICIAL["cifar10"][1]
    # conditional: a 10 x 64 class embedding, the basis map takes 64 more inputs; D: a 10 x 768 embedding and 768
    # outputs of its last Linear in place of 1
    assert OFFICIAL["cifar10"][2] - OFFICIAL["cifar10"][0] == 10 * 64 + 64 * 768
    assert OFFICIAL["cifar10"][3] - OFFICIAL["cifar10"][1] == 10 * 768 + 768 * 767


def test_imagenet_preset_with_its_1000_classes():
    g, d = _preset_pair("imagenet-32", num_classes=1000)
    assert (count(g), count(d)) == OFFICIAL_IMAGENET_32_1000_CLASSES


def test_presets_match_train_py():
    p = r3gan.PRESETS
    assert p["cifar10"] == (32, (768,) * 4, (2,) * 4, (96,) * 4, 2)
    assert p["ffhq-64"] == (64, (768,) * 4 + (384,), (2,) * 5, (96,) * 4 + (48,), 2)
    assert p["ffhq-256"] == (256, (768,) * 4 + (384, 192, 96), (2,) * 7, (96,) * 4 + (48, 24, 12), 2)
    assert p["imagenet-32"] == (32, (1536,) * 4, (2,) * 4, (96,) * 4, 2)
    assert p["imagenet-64"] == (64, (1536,) * 5, (2,) * 5, (96,) * 5, 2)
    assert r3gan.LATENT_DIM == 64


def test_discriminator_mirrors_the_generator():
    g, d = _preset_pair("ffhq-64")
    assert [type(s[0]).__name__ for s in g.stages] == ["GenerativeBasis"] + ["UpsampleTransition"] * 4
    assert [type(s[-1]).__name__ for s in d.stages] == ["DownsampleTransition"] * 4 + ["DiscriminativeBasis"]
    g_widths = [s[1].expand.in_channels for s in g.stages]
    assert g_widths == [768] * 4 + [384] and [s[0].expand.in_channels for s in d.stages] == g_widths[::-1]
    assert [s[1].grouped.groups for s in g.stages] == [96] * 4 + [48]
    assert [s[0].grouped.groups for s in d.stages] == [48] + [96] * 4
    # transitions: a 1x1 conv only where the width changes (G: before upsampling; D: after downsampling)
    assert [s[0].linear is not None for s in g.stages[1:]] == [False, False, False, True]
    assert [s[-1].linear is not None for s in d.stages[:-1]] == [True, False, False, False]


def test_preset_values_can_be_overridden_one_by_one():
    stages = r3gan.resolve_stages(r3gan.GeneratorParams(preset="cifar10", blocks=(1, 1, 1, 1)), 32)
    assert stages == ((768,) * 4, (1,) * 4, (96,) * 4, 2)
    with pytest.raises(ParameterError, match=r"cardinality 96 does not divide stage 1's 200 expanded channels"):
        r3gan.resolve_stages(r3gan.GeneratorParams(preset="cifar10", widths=(100,) * 4), 32)


# -- defaults -------------------------------------------------------------------------------

def test_cpu_sized_defaults():
    assert r3gan.resolve_stages(r3gan.GeneratorParams(), 32) == ((32, 32, 32, 16), (1,) * 4, (4, 4, 4, 2), 2)
    assert r3gan.default_widths(64) == (32, 32, 32, 16, 8)
    assert r3gan.default_widths(16) == (32, 32, 32)
    # the most groups of at least 16 channels that divide the expanded width
    assert [r3gan.default_cardinality(c) for c in (8, 16, 40, 64, 96, 1536)] == [1, 1, 2, 4, 6, 96]


# -- [1,2,1] resampling ---------------------------------------------------------------------

def test_resampling_kernel_is_the_official_one():
    row = torch.tensor([1.0, 3.0, 3.0, 1.0])  # [1,2,1] convolved with [1,1]
    assert torch.allclose(_nets.lowpass_kernel(), torch.outer(row, row) / 64)


def test_resampling_shapes():
    x = torch.randn(2, 5, 8, 8)
    assert _nets.Resample(5, up=True)(x).shape == (2, 5, 16, 16)
    assert _nets.Resample(5, up=False)(x).shape == (2, 5, 4, 4)


def test_downsampling_a_constant_gives_the_constant_inside_zero_padding_at_the_border():
    down = _nets.Resample(2, up=False)(torch.full((1, 2, 16, 16), 3.0))
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.tensor(3.0))
    # the official pads with zeros: the border taps miss 1 of 8 per axis
    assert torch.allclose(down[..., 0, 1:-1], torch.tensor(3.0 * 7 / 8))
    assert torch.allclose(down[..., 0, 0], torch.tensor(3.0 * 49 / 64))


def test_upsampling_a_constant_and_bilinear_interpolation():
    up = _nets.Resample(2, up=True)(torch.full((1, 2, 8, 8), 3.0))
    assert torch.allclose(up[..., 1:-1, 1:-1], torch.tensor(3.0))
    assert torch.allclose(up[..., 0, 1:-1], torch.tensor(3.0 * 3 / 4))  # zero padding, as the official
    x = torch.randn(2, 3, 8, 8)
    bilinear = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(_nets.Resample(3, up=True)(x)[..., 1:-1, 1:-1], bilinear[..., 1:-1, 1:-1], atol=1e-5)


def test_upsampling_then_downsampling_approximates_a_smooth_image():
    grid = torch.linspace(0, 1, 32)
    image = (torch.sin(2 * math.pi * grid)[:, None] * torch.cos(math.pi * grid)[None, :])[None, None]
    back = _nets.Resample(1, up=False)(_nets.Resample(1, up=True)(image))
    assert back.shape == image.shape
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))
    assert (back[inner] - image[inner]).abs().max() < 0.02


def test_downsampling_is_the_adjoint_of_upsampling_over_four():
    x, y = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 16, 16)
    up, down = _nets.Resample(3, up=True), _nets.Resample(3, up=False)
    assert torch.allclose((up(x) * y).sum(), 4 * (x * down(y)).sum(), rtol=1e-4)


# -- fix-up initialisation ------------------------------------------------------------------

def _blocks(net):
    return [m for m in net.modules() if isinstance(m, _nets.ResidualBlock)]


def test_each_residual_branch_ends_in_zeros_so_blocks_are_identities():
    g, d = generator(spec()), discriminator(spec())
    assert len(_blocks(g)) == len(_blocks(d)) == 4
    for block in _blocks(g) + _blocks(d):
        assert not block.project.weight.any()
        x = torch.randn(2, block.expand.in_channels, 4, 4)
        assert torch.equal(block(x), x)


def test_networks_at_init_equal_their_paths_without_residual_branches():
    s = spec((3, 32, 32), num_classes=4)
    g, d = generator(s, widths=(8, 8, 16, 8)), discriminator(s, widths=(8, 8, 16, 8))  # transitions with 1x1s too
    z, labels = torch.randn(3, LATENT), torch.tensor([0, 3, 1])
    with torch.no_grad():
        h = g.label(z, labels)
        for stage in g.stages:
            h = stage[0](h)  # basis or transition alone
        assert torch.allclose(g(z, labels), torch.tanh(g.aggregate(h)), atol=1e-6)
        x = torch.randn(3, 3, 32, 32)
        h = d.extract(x)
        for stage in d.stages:
            h = stage[-1](h)
        assert torch.allclose(d(x, labels), (h * d.embed(labels)).sum(1), atol=1e-5)


def test_variance_scaling_gain_is_the_official_formula():
    leaky_gain = math.sqrt(2 / (1 + 0.2 ** 2))  # the official BiasedActivation.Gain
    # ActivationGain * VarianceScalingParameter ** (-1 / (2 * NumberOfLinearLayers - 2)), 3 layers per branch
    for blocks in (1, 4, 8, 14):
        assert _nets.branch_gain(blocks) == pytest.approx(leaky_gain * blocks ** -0.25)
    assert _nets.branch_gain(8) == pytest.approx(0.8245668, abs=1e-7)  # the CIFAR-10 preset: 8 blocks per network


def test_weights_are_drawn_with_the_official_standard_deviations():
    torch.manual_seed(3)
    s = spec((3, 16, 16))
    g = generator(s, widths=(64, 64, 64), blocks=(1, 2, 1))  # 4 blocks in all
    gain = _nets.branch_gain(4)
    block = g.stages[1][1]
    # MSR: N(0, gain^2 / fan_in); fan_in = input channels per group x kernel size
    assert block.expand.weight.std().item() == pytest.approx(gain / math.sqrt(64), rel=0.05)
    assert block.grouped.weight.std().item() == pytest.approx(gain / math.sqrt(16 * 9), rel=0.05)
    assert g.stages[0][0].linear.weight.std().item() == pytest.approx(1 / math.sqrt(LATENT), rel=0.05)
    assert g.stages[0][0].basis.std().item() == pytest.approx(1.0, rel=0.05)
    assert g.aggregate.weight.std().item() == pytest.approx(1 / math.sqrt(64), rel=0.2)
    assert not any(b.act1.bias.any() or b.act2.bias.any() for b in _blocks(g))
    assert all(m.bias is None for m in g.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))


# -- shapes, ranges, refusals ---------------------------------------------------------------

@pytest.mark.parametrize("side", [16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_range(side, channels):
    s = spec((channels, side, side))
    images = generator(s)(torch.randn(3, LATENT))
    assert images.shape == (3, channels, side, side)
    assert images.min() >= -1 and images.max() <= 1
    assert discriminator(s)(images).shape == (3,)


def test_value_ranges():
    z = torch.randn(3, LATENT)
    images = generator(spec(value_range=(0.0, 1.0)))(z)
    assert images.min() >= 0 and images.max() <= 1
    net = generator(spec(value_range=None))
    h = z
    for stage in net.stages:
        h = stage(h)
    assert torch.equal(net(z), net.aggregate(h)), "unbounded data gets no output activation"


def test_no_normalisation_and_per_sample_scores_for_gradient_penalties():
    s = spec((1, 16, 16), needs=Needs(discriminator_batchnorm=False, input_gradients=True))
    d = discriminator(s)
    norms = (torch.nn.BatchNorm2d, torch.nn.GroupNorm, torch.nn.LayerNorm, torch.nn.InstanceNorm2d)
    assert not any(isinstance(m, norms) for m in [*d.modules(), *generator(s).modules()])
    for block in _blocks(d):  # a residual branch that does something, so the double backward has work to do
        torch.nn.init.normal_(block.project.weight, 0, 0.1)
    x = torch.randn(4, 1, 16, 16, requires_grad=True)
    with torch.no_grad():
        assert torch.allclose(d(x)[:1], d(x[:1]), atol=1e-5)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    grad.square().sum().backward()  # R1's double backward through every stage
    assert all(p.grad is not None for p in d.parameters())


@pytest.mark.parametrize(("shape", "tail"), [
    ((1, 28, 28), "got 28x28 images (use --image-size 16 or 32)"),
    ((3, 48, 48), "got 48x48 images (use --image-size 32 or 64)"),
    ((3, 4, 4), "got 4x4 images (use --image-size 8)"),
    ((3, 32, 16), "got 32x16 images"),
    ((2, 32, 32), "got images with 2 channels"),
    ((2,), "got samples of shape (2,), which are not images"),
])
def test_unsupported_shapes_are_refused_by_both_pieces(shape, tail):
    message = f"r3gan needs square images whose side is a power of two from 8 to 1024 px, with 1 or 3 channels; {tail}"
    for build, params in ((r3gan.build_generator, r3gan.GeneratorParams()),
                          (r3gan.build_discriminator, r3gan.DiscriminatorParams())):
        with pytest.raises(IncompatibleError) as error:
            build(params, spec(shape))
        assert str(error.value) == message


@pytest.mark.parametrize(("preset", "side", "needs"), [("cifar10", 64, 32), ("ffhq-64", 32, 64),
                                                       ("ffhq-256", 64, 256), ("imagenet-64", 32, 64)])
def test_a_preset_at_the_wrong_side_is_refused_in_one_line(preset, side, needs):
    for build, params in ((r3gan.build_generator, r3gan.GeneratorParams(preset=preset)),
                          (r3gan.build_discriminator, r3gan.DiscriminatorParams(preset=preset))):
        with pytest.raises(IncompatibleError) as error:
            build(params, spec((3, side, side)))
        assert str(error.value) == (f"preset {preset} is made for {needs}x{needs} images, and these are "
                                    f"{side}x{side} (use --image-size {needs})")


def test_lists_of_the_wrong_length_for_the_side_are_refused():
    with pytest.raises(IncompatibleError, match=r"^widths has 4 stages, and 64x64 images need 5 "
                                                r"\(a 4x4 basis doubled 4 times: log2\(64\) - 1 stages\)$"):
        generator(spec((3, 64, 64)), widths=(8, 8, 8, 8))


def test_parameter_checks():
    with pytest.raises(ValueError, match="widths must be positive integers, one per stage, got 8,0"):
        r3gan.GeneratorParams(widths=(8, 0))
    with pytest.raises(ValueError, match="blocks must be non-negative"):
        r3gan.DiscriminatorParams(blocks=(1, -1))
    with pytest.raises(ValueError, match="one entry per stage each; got widths 3, blocks 2"):
        r3gan.GeneratorParams(widths=(8, 8, 8), blocks=(1, 1))
    with pytest.raises(ValueError, match="expansion must be at least 1"):
        r3gan.GeneratorParams(expansion=0)
    with pytest.raises(ParameterError, match="cardinality 3 does not divide stage 1's 16 expanded channels"):
        generator(spec((3, 8, 8)), widths=(8, 8), cardinality=(3, 1))


def test_latent_codes_refused():
    with pytest.raises(IncompatibleError, match="judges images.*latent codes"):
        discriminator(spec(needs=Needs(discriminator_input="latent")))


def test_blocks_can_be_zero():
    g = generator(spec((1, 16, 16)), widths=(8, 8, 8), blocks=(0, 1, 0))
    assert len(_blocks(g)) == 1 and g(torch.randn(2, LATENT)).shape == (2, 1, 16, 16)


# -- conditioning ---------------------------------------------------------------------------

def test_conditional_generator_depends_on_the_label():
    g = generator(spec((1, 16, 16), num_classes=5))
    z = torch.randn(1, LATENT).repeat(2, 1)  # the same noise twice, as the engine checks before training
    with torch.no_grad():
        images = g(z, torch.tensor([0, 3]))
    assert (images[0] - images[1]).abs().max() > 1e-3
    # the official conditional presets: a class embedding as wide as the noise, concatenated to z
    assert g.label.embed.weight.shape == (5, LATENT) and g.stages[0][0].linear.in_features == 2 * LATENT
    assert g.label.embed.weight.std().item() == pytest.approx(1 / math.sqrt(5), rel=0.35)


def test_conditional_discriminator_projects_on_the_class_embedding():
    s = spec((3, 16, 16), num_classes=5)
    d = discriminator(s, widths=(16, 8, 8))
    assert d.embed.weight.shape == (5, 16)  # as wide as the 4x4 stage, WidthPerStage[0] in train.py
    x, labels = torch.randn(4, 3, 16, 16), torch.tensor([0, 4, 2, 2])
    with torch.no_grad():
        scores, other = d(x, labels), d(x, (labels + 1) % 5)
    assert scores.shape == (4,)
    assert (scores - other).abs().min() > 1e-6, "the score changes with the label"
    d(x, labels).sum().backward()
    grad = d.embed.weight.grad
    assert grad[[0, 2, 4]].abs().amin(dim=1).gt(0).all() and not grad[[1, 3]].any()


def test_conditioning_calls():
    z, labels = torch.randn(2, LATENT), torch.tensor([1, 2])
    s = spec((1, 16, 16), num_classes=3)
    with pytest.raises(ValueError, match=r"conditioned on 3 classes.*generator\(z, condition\)"):
        generator(s)(z)
    with pytest.raises(ValueError, match=r"conditioned on 3 classes.*discriminator\(x, condition\)"):
        discriminator(s)(torch.randn(2, 1, 16, 16))
    plain, critic = generator(spec((1, 16, 16))), discriminator(spec((1, 16, 16)))
    assert torch.equal(plain(z, labels), plain(z)), "an unconditional generator ignores labels"
    x = torch.randn(2, 1, 16, 16)
    assert torch.equal(critic(x, labels), critic(x)), "an unconditional discriminator ignores labels"


# -- registration, runs, compile ------------------------------------------------------------

def test_registered_and_installed():
    from importlib.metadata import distribution

    from gan_registry.testing import isolated_registry

    registry = isolated_registry(("r3gan", r3gan))  # other installed plugins are not this test's business
    g, d = registry.get("generator", "r3gan"), registry.get("discriminator", "r3gan")
    assert g.conditional and d.conditional
    assert g.params is r3gan.GeneratorParams and d.params is r3gan.DiscriminatorParams
    arch = registry.get("architecture", "r3gan")
    assert (arch.generator, arch.discriminator, arch.latent_dim) == ("r3gan", "r3gan", 64)
    assert arch.suggests == {"steps": r3gan.STEPS, **r3gan.RECIPE}
    (entry,) = [e for e in distribution("gan-registry-r3gan").entry_points if e.group == "gan_registry"]
    assert (entry.name, entry.value) == ("r3gan", "gan_registry_r3gan")


def test_arch_params_set_both_pieces_in_a_checked_run():
    from gan_registry.testing import build, isolated_registry
    from gan_registry_objectives import rpgan
    from gan_registry_toy_datasets import digits

    registry = isolated_registry(("r3gan", r3gan), ("rpgan", rpgan), ("digits", digits))
    built = build(registry, arch="r3gan", objective="rpgan", dataset="digits", image_size=16,
                  params={"arch": {"widths": "16,8,8", "blocks": "1,0,1"}})
    assert built.params["generator"].widths == built.params["discriminator"].widths == (16, 8, 8)
    assert built.spec.latent_dim == 64 and built.spec.sample_shape == (1, 16, 16)
    d = built.networks["discriminator"]
    assert d.stages[-1][-1].basis.in_channels == 16  # mirrored: the discriminator ends at the 4x4 stage's width


def test_real_runs_through_the_command_line(tmp_path):
    """`gan run` on digits in a subprocess (the real thing), and beside it, through the same command line in this
    process (click's runner: no second start-up of torch and the plugins), on stacked digits (3 channels) and on
    digits conditionally."""
    from gan_registry.testing import HANG_S, invoke_gan

    common = ["--arch", "r3gan", "--objective", "rpgan", "--steps", "3", "--batch-size", "8", "--seed", "0",
              "--no-progress", "-p", "arch.widths=8,8,8,8"]
    env = {**os.environ, "GAN_REGISTRY_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    real = subprocess.Popen([sys.executable, "-m", "gan_registry", "run", *common, "--dataset", "digits", "--out",
                             str(tmp_path / "digits")], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        for name, args in {"stacked": ["--dataset", "stacked"],
                           "conditional": ["--dataset", "digits", "--conditional"]}.items():
            result = invoke_gan("run", *common, *args, "--out", tmp_path / name)
            assert result.exit_code == 0, f"{name}: {result.output}"
            assert (tmp_path / name / "checkpoints" / "last.pt").exists()
        output, _ = real.communicate(timeout=HANG_S)
    finally:
        real.kill()
        real.wait()
    assert real.returncode == 0, output
    assert (tmp_path / "digits" / "checkpoints" / "last.pt").exists()
    assert "done:" in output


def test_torch_compile_and_bf16_autocast_forward():
    s = spec((3, 16, 16), num_classes=4)
    g, d = generator(s), discriminator(s)
    z, labels = torch.randn(2, LATENT), torch.tensor([1, 3])
    with torch.no_grad():
        expected = g(z, labels)
        try:
            # aot_eager: dynamo traces the whole forward in one graph (fullgraph: no break) without a C++ compiler
            compiled = torch.compile(g, backend="aot_eager", fullgraph=True)
            got = compiled(z, labels)
        except Exception as error:  # pragma: no cover - a torch without dynamo on this platform
            if "compile" in type(error).__name__.lower() or isinstance(error, (RuntimeError, ImportError)):
                pytest.skip(f"torch.compile unavailable: {error}")
            raise
        assert torch.allclose(got, expected, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            images = g(z, labels)
            scores = d(images, labels)
    assert images.shape == (2, 3, 16, 16) and scores.shape == (2,)
    assert torch.isfinite(images).all() and torch.isfinite(scores).all()
    assert (images.float() - expected).abs().max() < 0.1


def test_r3gan_with_rpgan_trains_with_the_papers_recipe_over_the_default_run():
    """train.py's schedulers: rate 2e-4 -> 5e-5, beta2 0.9 -> 0.99, gamma down tenfold, half cosines."""
    from gan_registry import Schedule
    from gan_registry.testing import build

    built = build(arch="r3gan", objective="rpgan", dataset="digits")
    p = built.params["objective"]
    steps = built.settings["steps"]
    assert steps == r3gan.STEPS
    for value, start, end in ((p.lr_generator, 2e-4, 5e-5), (p.lr_discriminator, 2e-4, 5e-5), (p.betas[1], 0.9, 0.99),
                              (p.r1, 0.1, 0.01), (p.r2, 0.1, 0.01)):
        assert isinstance(value, Schedule) and (value.start, value.end, value.shape) == (start, end, "cosine")
        assert value.steps == steps and abs(value.at(steps // 2, 1) - (start + end) / 2) < 1e-3 * start
    assert p.betas[0] == 0.0
    mine = build(arch="r3gan", objective="rpgan", dataset="digits", params={"objective": {"r1": "0.5"}})
    assert mine.params["objective"].r1 == 0.5 and isinstance(mine.params["objective"].r2, Schedule)
