"""dcgan pieces: shapes over every supported size, init, norm negotiation, refusals, real `gan` runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import gan_registry_dcgan as dcgan
from gan_registry import IncompatibleError, NetworkSpec, Needs
from gan_registry.testing import HANG_S

LATENT = 16


def spec(shape, needs=Needs(), value_range=(-1.0, 1.0)):
    return NetworkSpec(tuple(shape), LATENT, value_range, needs)


def pair(shape, base, needs=Needs(), value_range=(-1.0, 1.0), **g_params):
    s = spec(shape, needs, value_range)
    generator = dcgan.build_generator(dcgan.GeneratorParams(base=base, **g_params), s)
    discriminator = dcgan.build_discriminator(dcgan.DiscriminatorParams(base=base), s)
    return generator, discriminator


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("side", dcgan.SIZES)
def test_shapes_and_range(side, channels):
    torch.manual_seed(0)
    batch = 2 if side >= 128 else 4  # the large sizes stay cheap: batch 2, base 8
    generator, discriminator = pair((channels, side, side), base=8)
    images = generator(torch.randn(batch, LATENT))
    assert images.shape == (batch, channels, side, side)
    assert images.min() >= -1 and images.max() <= 1
    logits = discriminator(images)
    assert logits.shape == (batch,)


def test_linear_stem_and_value_ranges():
    z = torch.randn(3, LATENT)
    generator, _ = pair((3, 32, 32), base=8, stem="linear", value_range=(0.0, 1.0))
    assert isinstance(generator.net[0], nn.Linear)
    images = generator(z)
    assert images.shape == (3, 3, 32, 32) and images.min() >= 0 and images.max() <= 1

    generator, _ = pair((1, 16, 16), base=8, value_range=None)
    generator.eval()
    assert torch.equal(generator(z), generator.net(z)), "unbounded data gets no output activation"


def test_widths_double_per_stage_and_cap_at_8x():
    generator, discriminator = pair((3, 64, 64), base=64)
    g_widths = [m.out_channels for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    d_widths = [m.out_channels for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert g_widths == [512, 256, 128, 64, 3]  # the paper's 64 px generator
    assert d_widths == [64, 128, 256, 512, 1]
    generator, _ = pair((1, 256, 256), base=4)
    assert [m.out_channels for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)][:3] == [32, 32, 32]


def test_init_statistics():
    torch.manual_seed(0)
    generator, discriminator = pair((3, 64, 64), base=64)
    for net in (generator, discriminator):
        convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        weights = torch.cat([m.weight.flatten() for m in convs])
        assert weights.std().item() == pytest.approx(0.02, rel=0.02)
        assert abs(weights.mean().item()) < 1e-3
        assert all(m.bias is None or not m.bias.any() for m in convs)
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    scales = torch.cat([m.weight for m in norms]).detach()
    assert scales.mean().item() == pytest.approx(1.0, abs=0.005)
    assert scales.std().item() == pytest.approx(0.02, rel=0.15)
    assert all(m.eps == 1e-5 and m.momentum == 0.1 and not m.bias.any() for m in norms)


def test_no_norm_on_the_first_discriminator_layer():
    _, discriminator = pair((1, 32, 32), base=8)
    assert isinstance(discriminator.net[0], nn.Conv2d) and isinstance(discriminator.net[1], nn.LeakyReLU)


def _norm_modules(discriminator):
    return {type(m) for m in discriminator.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d))}


def test_auto_norm_is_batch_unless_the_objective_forbids_it():
    _, discriminator = pair((1, 32, 32), base=8)
    assert _norm_modules(discriminator) == {nn.BatchNorm2d}
    _, discriminator = pair((1, 32, 32), base=8, needs=Needs(discriminator_batchnorm=False))
    assert _norm_modules(discriminator) == {nn.GroupNorm}


@pytest.mark.parametrize("norm", ["auto", "layer", "instance", "none"])
def test_per_sample_norms_keep_samples_independent(norm):
    torch.manual_seed(0)
    s = spec((1, 32, 32), Needs(discriminator_batchnorm=False))
    discriminator = dcgan.build_discriminator(dcgan.DiscriminatorParams(base=8, norm=norm), s)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in discriminator.modules())
    x = torch.randn(4, 1, 32, 32)
    # In training mode, as under a gradient penalty: a sample's logit must not depend on its batch.
    assert torch.allclose(discriminator(x)[:1], discriminator(x[:1]), atol=1e-5)


def test_explicit_batchnorm_refused_when_the_objective_forbids_it():
    s = spec((1, 32, 32), Needs(discriminator_batchnorm=False))
    with pytest.raises(IncompatibleError, match=r"norm=batch mixes the samples.*per sample.*norm=auto picks layer"):
        dcgan.build_discriminator(dcgan.DiscriminatorParams(norm="batch"), s)


def test_latent_codes_refused():
    with pytest.raises(IncompatibleError, match="judges images.*latent codes"):
        dcgan.build_discriminator(dcgan.DiscriminatorParams(), spec((1, 32, 32), Needs(discriminator_input="latent")))


@pytest.mark.parametrize(
    ("shape", "tail"),
    [
        ((1, 48, 48), "got 48x48 images (use --image-size 32 or 64)"),
        ((3, 512, 512), "got 512x512 images (use --image-size 256)"),
        ((3, 32, 16), "got 32x16 images"),
        ((2,), "got samples of shape (2,), which are not images"),
    ],
)
def test_unsupported_shapes_are_refused_by_both_pieces(shape, tail):
    message = f"dcgan needs square images of 16, 32, 64, 128 or 256 px; {tail}"
    for build, params in ((dcgan.build_generator, dcgan.GeneratorParams()),
                          (dcgan.build_discriminator, dcgan.DiscriminatorParams())):
        with pytest.raises(IncompatibleError) as error:
            build(params, spec(shape))
        assert str(error.value) == message


def test_arch_base_sets_both_pieces():
    from gan_registry.testing import build, isolated_registry
    from gan_registry_objectives import gan
    from gan_registry_toy_datasets import digits

    # Only the plugins this needs: other installed plugins are not this test's business.
    registry = isolated_registry(("dcgan", dcgan), ("gan", gan), ("digits", digits))
    built = build(registry, arch="dcgan", objective="gan", image_size=16, params={"arch": {"base": "8"}})
    assert built.params["generator"].base == built.params["discriminator"].base == 8
    assert built.spec.latent_dim == 100


def test_base_must_be_positive():
    with pytest.raises(ValueError, match="base must be at least 1"):
        dcgan.DiscriminatorParams(base=0)


# -- the real command line ------------------------------------------------------------------

SHORT = ["--steps", "3", "--batch-size", "8", "--no-progress"]
RUNS = {
    "dcgan-32": ["--arch", "dcgan", "--objective", "gan", "--dataset", "digits", "--image-size", "32"],
    "headline": ["--arch", "dcgan", "--objective", "wgan-gp"],  # the project's headline command, defaults only
    "refuse-48px": ["--arch", "dcgan", "--objective", "gan", "--image-size", "48"],
    "refuse-points": ["--arch", "dcgan", "--objective", "gan", "--dataset", "gaussians"],
}


@pytest.fixture(scope="module")
def gan_runs(tmp_path_factory):
    """Start every `gan run` at once (they spend most of their time importing), then collect them."""
    root = tmp_path_factory.mktemp("runs")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # parallel runs on a small machine: no oversubscription
    started = {
        name: subprocess.Popen([sys.executable, "-m", "gan_registry", "run", *args, *SHORT, "--out", str(root / name)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for name, args in RUNS.items()
    }
    finished = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=HANG_S)
        finished[name] = (process.returncode, out, err, root / name)
    return finished


def test_dcgan_trains_on_digits(gan_runs):
    code, out, err, run_dir = gan_runs["dcgan-32"]
    assert code == 0, err
    assert "images/s=" in err and (run_dir / "checkpoints" / "last.pt").exists()


def test_headline_wgan_gp_run_gets_a_per_sample_critic_and_writes_digit_grids(gan_runs):
    from PIL import Image

    from gan_registry import Run

    code, out, err, run_dir = gan_runs["headline"]
    assert code == 0, err
    config = json.loads((run_dir / "config.json").read_text())
    assert config["settings"]["dataset"] == "digits" and config["sample_shape"] == [1, 32, 32]
    critic = Run.open(run_dir).checkpoint()["models"]
    assert not any(key.startswith("discriminator.") and "running_mean" in key for key in critic)  # no BatchNorm
    assert any(key.startswith("generator.") and "running_mean" in key for key in critic)  # the generator keeps it
    grid = Image.open(run_dir / "samples" / "final-step-0000003.png")
    assert grid.size == (8 * 34 + 2, 8 * 34 + 2)  # 64 digits of 32 px, 2 px apart


@pytest.mark.parametrize(
    ("name", "reason"),
    [("refuse-48px", "got 48x48 images (use --image-size 32 or 64)"),
     ("refuse-points", "got samples of shape (2,), which are not images")],
)
def test_refusals_are_one_line_errors(gan_runs, name, reason):
    code, _, err, run_dir = gan_runs[name]
    assert code == 2
    assert "Traceback" not in err
    # Other installed plugins may warn while loading ("warning: ..."); the refusal itself is one line.
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("Error:") and reason in lines[0]
    assert not (run_dir / "checkpoints").exists()


# -- spectral norm (-p discriminator.spectral_norm=true) --------------------------------------

@pytest.fixture
def one_thread():
    """One torch thread, restored afterwards with the random states: these small nets run ~100x faster
    on a busy 2-core machine than with torch's one thread per core."""
    from gan_registry.testing import preserved_rng

    with preserved_rng():
        torch.set_num_threads(1)
        yield


def _weighted(net):
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _sn_discriminator(needs=Needs(), **params):
    return dcgan.build_discriminator(dcgan.DiscriminatorParams(base=8, **params), spec((1, 32, 32), needs))


def test_spectral_norm_parametrizes_every_conv_and_is_off_by_default():
    from torch.nn.utils import parametrize

    off, on = _sn_discriminator(), _sn_discriminator(spectral_norm=True)
    assert not any(parametrize.is_parametrized(m) for m in off.modules())
    assert not any("parametrizations" in key for key in off.state_dict())
    assert len(_weighted(on)) == 4 and all(
        parametrize.is_parametrized(m, "weight") and type(m.parametrizations.weight[0]).__name__ == "_SpectralNorm"
        for m in _weighted(on))
    # the power-iteration vectors are buffers: in the state dict, so checkpoints carry them
    keys = on.state_dict().keys()
    assert sum(k.endswith(("parametrizations.weight.0._u", "parametrizations.weight.0._v")) for k in keys) == 2 * 4
    assert {k.rsplit(".", 1)[1] for k in keys if ".parametrizations.weight." in k} == {"original", "_u", "_v"}


def test_spectral_norm_keeps_the_dcgan_init():
    torch.manual_seed(0)
    plain = _sn_discriminator(norm="none")  # what auto is with spectral norm: the same layers, drawn alike
    torch.manual_seed(0)
    normalised = _sn_discriminator(spectral_norm=True)
    for a, b in zip(_weighted(plain), _weighted(normalised)):
        # the normalised layer's raw weight is the initialised one (N(0, 0.02)), not re-initialised after
        assert torch.equal(a.weight, b.parametrizations.weight.original)


def test_auto_norm_is_none_with_spectral_norm():
    assert _norm_modules(_sn_discriminator(spectral_norm=True)) == set()
    assert _norm_modules(_sn_discriminator(Needs(discriminator_batchnorm=False), spectral_norm=True)) == set()
    assert _norm_modules(_sn_discriminator(spectral_norm=True, norm="batch")) == {nn.BatchNorm2d}  # explicit: kept
    assert _norm_modules(_sn_discriminator()) == {nn.BatchNorm2d}  # off: auto unchanged
    with pytest.raises(IncompatibleError, match="norm=batch mixes the samples"):
        _sn_discriminator(Needs(discriminator_batchnorm=False), spectral_norm=True, norm="batch")


def test_spectral_norm_bounds_each_weights_largest_singular_value_by_one(one_thread):
    torch.manual_seed(0)
    net = _sn_discriminator(spectral_norm=True).train()
    with torch.no_grad():
        for _ in range(100):  # one power iteration per training-mode forward
            net(torch.randn(2, 1, 32, 32))
        for m in _weighted(net):
            sigma = torch.linalg.matrix_norm(m.weight.reshape(m.weight.shape[0], -1), ord=2).item()
            assert sigma == pytest.approx(1.0, abs=1e-2)


def test_arch_spectral_norm_spreads_to_the_discriminator():
    from gan_registry.testing import build, isolated_registry
    from gan_registry_objectives import gan
    from gan_registry_toy_datasets import digits

    registry = isolated_registry(("dcgan", dcgan), ("gan", gan), ("digits", digits))
    built = build(registry, arch="dcgan", objective="gan", image_size=16,
                  params={"arch": {"spectral_norm": "true", "base": "8"}})
    assert built.params["discriminator"].spectral_norm is True
    assert any(".parametrizations.weight." in k for k in built.networks["discriminator"].state_dict())


def _gan_ok(*args):
    from gan_registry.testing import invoke_gan

    result = invoke_gan(*args)
    assert result.exit_code == 0, result.output
    return result


def _models(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["models"]


def test_spectral_norm_run_resumes_bit_exact(tmp_path, one_thread):
    args = ["--arch", "dcgan", "--objective", "gan", "--dataset", "digits", "--image-size", "16", "--batch-size", "8",
            "-p", "arch.base=8", "-p", "discriminator.spectral_norm=true", "--device", "cpu", "--seed", "0",
            "--no-progress"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    _gan_ok("run", *args, "--steps", "4", "--out", straight)
    _gan_ok("run", *args, "--steps", "2", "--out", split)
    halfway = _models(split)
    _gan_ok("resume", split, "--steps", "4", "--no-progress")
    a, b = _models(straight), _models(split)
    vectors = [k for k in a if k.startswith("discriminator.") and k.endswith(("._u", "._v"))]
    assert len(vectors) == 2 * 3  # u and v of the 3 convs at 16 px
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # not equal by standing still: the power iteration moved u between step 2 and step 4
    assert not all(torch.equal(halfway[k], a[k]) for k in vectors if k.endswith("._u"))


@pytest.mark.parametrize("conditioning", ["projection", "acgan"])
def test_conditional_pieces_take_labels(conditioning):
    torch.manual_seed(0)
    s = NetworkSpec((3, 32, 32), LATENT, (-1.0, 1.0), num_classes=10)
    generator = dcgan.build_generator(dcgan.GeneratorParams(base=8), s).eval()
    discriminator = dcgan.build_discriminator(dcgan.DiscriminatorParams(base=8, conditioning=conditioning), s)
    z, labels = torch.randn(1, LATENT).expand(2, LATENT), torch.tensor([1, 8])
    images = generator(z, labels)
    assert images.shape == (2, 3, 32, 32) and not torch.equal(images[0], images[1])
    out = discriminator(images, labels)
    if conditioning == "acgan":
        assert out[0].shape == (2,) and out[1].ndim == 0
    else:
        assert out.shape == (2,) and not torch.equal(out, discriminator(images, labels.flip(0)))
    # the unconditional pieces keep their state-dict names: runs made before conditioning still load
    plain = dcgan.build_discriminator(dcgan.DiscriminatorParams(base=8), spec((3, 32, 32)))
    assert set(plain.state_dict()) < set(discriminator.state_dict())
