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
        out, err = process.communicate(timeout=300)
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
