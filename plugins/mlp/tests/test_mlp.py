"""The mlp pieces: shapes, output range, norms and negotiation, for images and 2D points."""
import pytest
import torch

from gan_registry import IncompatibleError, NetworkSpec, Needs
from gan_registry_mlp import DiscriminatorParams, GeneratorParams, build_discriminator, build_generator


@pytest.mark.parametrize("shape, value_range", [((1, 16, 16), (-1.0, 1.0)), ((3, 8, 8), (0.0, 1.0)), ((2,), None)])
def test_shapes_and_output_range(shape, value_range):
    spec = NetworkSpec(shape, 16, value_range)
    generator = build_generator(GeneratorParams(hidden=32), spec)
    discriminator = build_discriminator(DiscriminatorParams(hidden=32), spec)
    samples = generator(torch.randn(5, 16))
    assert samples.shape == (5, *shape)
    if value_range is not None:
        assert samples.min() >= value_range[0] and samples.max() <= value_range[1]
    assert discriminator(samples).shape == (5,)


def has_batchnorm(module) -> bool:
    return any(isinstance(m, torch.nn.BatchNorm1d) for m in module.modules())


def test_generator_batchnorm_is_a_parameter():
    points, images = NetworkSpec((2,), 8, None), NetworkSpec((1, 8, 8), 8, (-1.0, 1.0))
    assert has_batchnorm(build_generator(GeneratorParams(hidden=16, norm="batch"), points))
    assert not has_batchnorm(build_generator(GeneratorParams(hidden=16, norm="none"), images))
    # auto: BatchNorm for images only
    assert has_batchnorm(build_generator(GeneratorParams(hidden=16), images))
    assert not has_batchnorm(build_generator(GeneratorParams(hidden=16), points))


def test_discriminator_negotiates_batchnorm():
    per_sample = NetworkSpec((2,), 8, None, Needs(discriminator_batchnorm=False))
    critic = build_discriminator(DiscriminatorParams(hidden=16), per_sample)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in critic.modules())
    with pytest.raises(IncompatibleError, match="norm=batch mixes the samples"):
        build_discriminator(DiscriminatorParams(hidden=16, norm="batch"), per_sample)
    layer = build_discriminator(DiscriminatorParams(hidden=16, norm="layer"), per_sample)
    assert any(isinstance(m, torch.nn.LayerNorm) for m in layer.modules())


def test_discriminator_on_latent_codes():
    spec = NetworkSpec((1, 8, 8), 6, (-1.0, 1.0), Needs(encoder=True, discriminator_input="latent"))
    assert build_discriminator(DiscriminatorParams(hidden=16), spec)(torch.randn(4, 6)).shape == (4,)


# -- spectral norm (-p discriminator.spectral_norm=true) --------------------------------------

@pytest.fixture
def one_thread():
    """One torch thread, restored afterwards with the random states: these small nets run ~100x faster
    on a busy 2-core machine than with torch's one thread per core."""
    from gan_registry.testing import preserved_rng

    with preserved_rng():
        torch.set_num_threads(1)
        yield


def _linears(net):
    return [m for m in net.modules() if isinstance(m, torch.nn.Linear)]


@pytest.mark.parametrize("spec", [NetworkSpec((1, 8, 8), 8, (-1.0, 1.0)), NetworkSpec((2,), 8, None),
                                  NetworkSpec((1, 8, 8), 6, (-1.0, 1.0), Needs(encoder=True, discriminator_input="latent"))],
                         ids=["images", "points", "codes"])
def test_spectral_norm_parametrizes_every_linear_and_is_off_by_default(spec):
    from torch.nn.utils import parametrize

    off = build_discriminator(DiscriminatorParams(hidden=16, depth=2), spec)
    on = build_discriminator(DiscriminatorParams(hidden=16, depth=2, spectral_norm=True), spec)
    assert not any(parametrize.is_parametrized(m) for m in off.modules())
    assert not any("parametrizations" in key for key in off.state_dict())
    assert len(_linears(on)) == 3 and all(
        parametrize.is_parametrized(m, "weight") and type(m.parametrizations.weight[0]).__name__ == "_SpectralNorm"
        for m in _linears(on))
    keys = on.state_dict().keys()  # the power-iteration vectors are buffers, so checkpoints carry them
    assert sum(k.endswith(("parametrizations.weight.0._u", "parametrizations.weight.0._v")) for k in keys) == 2 * 3
    inputs = torch.randn(4, *((spec.latent_dim,) if spec.needs.discriminator_input == "latent" else spec.sample_shape))
    assert on(inputs).shape == (4,)


def test_spectral_norm_bounds_each_weights_largest_singular_value_by_one(one_thread):
    torch.manual_seed(0)
    net = build_discriminator(DiscriminatorParams(hidden=64, spectral_norm=True), NetworkSpec((1, 16, 16), 8, (-1.0, 1.0)))
    net.train()
    with torch.no_grad():
        for _ in range(100):  # one power iteration per training-mode forward
            net(torch.randn(2, 1, 16, 16))
        for m in _linears(net):
            assert torch.linalg.matrix_norm(m.weight, ord=2).item() == pytest.approx(1.0, abs=1e-2)


def test_spectral_norm_run_through_the_cli(tmp_path, one_thread):
    from gan_registry.testing import invoke_gan

    result = invoke_gan("run", "--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "-p",
                        "dataset.count=256", "-p", "arch.hidden=32", "--batch-size", "16", "--device", "cpu",
                        "-p", "discriminator.spectral_norm=true", "--steps", "4", "--out", tmp_path / "run",
                        "--no-progress")
    assert result.exit_code == 0, result.output
    models = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["models"]
    assert sum(k.startswith("discriminator.") and k.endswith(("._u", "._v")) for k in models) == 2 * 3


@pytest.mark.parametrize("conditioning", ["projection", "acgan"])
def test_conditional_pieces_take_labels(conditioning):
    torch.manual_seed(0)
    spec = NetworkSpec((1, 8, 8), 16, (-1.0, 1.0), num_classes=10)
    generator = build_generator(GeneratorParams(hidden=32), spec).eval()
    discriminator = build_discriminator(DiscriminatorParams(hidden=32, conditioning=conditioning), spec)
    z, labels = torch.randn(1, 16).expand(2, 16), torch.tensor([3, 7])
    samples = generator(z, labels)
    assert samples.shape == (2, 1, 8, 8) and not torch.equal(samples[0], samples[1])
    out = discriminator(samples, labels)
    if conditioning == "acgan":
        scores, loss = out
        assert scores.shape == (2,) and loss.ndim == 0 and loss > 0
    else:
        assert out.shape == (2,)
        assert not torch.equal(out, discriminator(samples, labels.flip(0)))
    with pytest.raises(ValueError, match="acgan_weight must be > 0"):
        DiscriminatorParams(acgan_weight=0)


def linear_widths(module) -> list[int]:
    return [m.out_features for m in module.modules() if isinstance(m, torch.nn.Linear)]


def test_images_get_a_wider_deeper_default_than_points_and_codes():
    images, points = NetworkSpec((1, 8, 8), 16, (-1.0, 1.0)), NetworkSpec((2,), 16, None)
    assert linear_widths(build_generator(GeneratorParams(), images)) == [512, 512, 512, 64]
    assert linear_widths(build_discriminator(DiscriminatorParams(), images)) == [512, 512, 512, 1]
    assert linear_widths(build_generator(GeneratorParams(), points)) == [256, 256, 2]
    codes = NetworkSpec((1, 8, 8), 16, (-1.0, 1.0), Needs(discriminator_input="latent"))
    assert linear_widths(build_discriminator(DiscriminatorParams(), codes)) == [256, 256, 1]
    assert linear_widths(build_generator(GeneratorParams(hidden=32, depth=1), images)) == [32, 64]
    with pytest.raises(IncompatibleError, match="at least 1"):
        build_generator(GeneratorParams(depth=0), images)
