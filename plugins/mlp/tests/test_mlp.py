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
