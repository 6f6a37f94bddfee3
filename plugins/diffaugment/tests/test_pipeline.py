"""The diffaugment pipeline on its own: transforms, gradients, randomness, the adaptive p, and refusals."""
from __future__ import annotations

import random
import subprocess
import sys

import pytest
import torch
from gan_registry import IncompatibleError, NetworkSpec, Needs, Schedule

from gan_registry_diffaugment import DiffAugmentParams, build
from gan_registry.testing import HANG_S

IMAGES = NetworkSpec(sample_shape=(3, 16, 16), latent_dim=8, value_range=(-1.0, 1.0))


def augment(spec: NetworkSpec = IMAGES, **params):
    return build(DiffAugmentParams(**params), spec)


def images(n: int = 32, shape=(3, 16, 16), seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g) * 2 - 1


def changed_samples(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a != b).flatten(1).any(dim=1)


# -- the transforms ----------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_p_zero_leaves_images_exactly_as_they_were(policy):
    x = images()
    torch.manual_seed(0)
    assert torch.equal(augment(policy=policy, p=0.0)(x), x)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout"])
def test_p_one_changes_the_images_and_keeps_shape_and_dtype(policy):
    x = images(64)
    torch.manual_seed(0)
    out = augment(policy=policy, p=1.0)(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    # Translation draws a zero shift on both axes for 1 image in 25 (16 px: shifts of -2..2); the rest move.
    assert changed_samples(out, x).float().mean() > 0.8


def test_without_target_p_defaults_to_always():
    assert float(augment().p) == 1.0
    assert float(augment(target=0.6).p) == 0.0, "adaptive runs start at p = 0, as StyleGAN2-ADA"
    assert float(augment(target=0.6, p=0.3).p) == pytest.approx(0.3)


def test_cutout_blanks_a_clipped_square_with_the_middle_of_the_value_range():
    spec = NetworkSpec(sample_shape=(1, 16, 16), latent_dim=8, value_range=(0.0, 1.0))
    x = torch.ones(64, 1, 16, 16)
    torch.manual_seed(0)
    out = augment(spec, policy="cutout", p=1.0)(x)
    assert set(out.unique().tolist()) == {0.5, 1.0}
    blanked = (out == 0.5).flatten(1).sum(dim=1)
    assert (blanked > 0).all() and (blanked <= 8 * 8).all(), "a square of half the side, clipped at the edges"
    assert (blanked == 64).any(), "squares away from the edges are whole"


def test_translation_shifts_by_at_most_the_ratio_and_fills_with_the_middle():
    spec = NetworkSpec(sample_shape=(1, 16, 16), latent_dim=8, value_range=(0.0, 1.0))
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 7, 7] = 1.0  # one bright pixel, to see where it goes
    x[:, :, 0, :] = 0.25  # and a top row, to see what comes in
    torch.manual_seed(0)
    out = augment(spec, policy="translation", p=1.0, translation_ratio=0.125)(x)
    for image in out[:, 0]:
        ys, xs = torch.nonzero(image == 1.0, as_tuple=True)
        assert len(ys) == 1 and abs(int(ys[0]) - 7) <= 2 and abs(int(xs[0]) - 7) <= 2
        assert set(image.unique().tolist()) <= {0.0, 0.25, 0.5, 1.0}
    assert (out == 0.5).any(), "pixels shifted in are the fill value"


def test_translation_alone_moves_pixels_without_changing_their_values():
    x = images(8)
    torch.manual_seed(0)
    out = augment(policy="translation", p=1.0)(x)
    fill = 0.0  # the middle of (-1, 1)
    for a, b in zip(x, out):
        kept = b[b != fill]
        assert torch.isin(kept, a).all()


def test_color_on_a_grey_image_changes_brightness_and_contrast():
    spec = NetworkSpec(sample_shape=(1, 8, 8), latent_dim=8, value_range=(-1.0, 1.0))
    x = images(16, (1, 8, 8))
    torch.manual_seed(0)
    out = augment(spec, policy="color", p=1.0)(x)
    assert changed_samples(out, x).all()
    assert not torch.allclose(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)))


def test_part_of_the_batch_is_augmented_at_p_one_half():
    x = images(256)
    torch.manual_seed(0)
    out = augment(policy="cutout", p=0.5)(x)
    fraction = changed_samples(out, x).float().mean()
    assert 0.35 < fraction < 0.65
    untouched = ~changed_samples(out, x)
    assert torch.equal(out[untouched], x[untouched])


# -- gradients ---------------------------------------------------------------------------------
def test_the_output_is_differentiable_in_the_input():
    x = images(16).requires_grad_(True)
    torch.manual_seed(0)
    out = augment(p=1.0)(x)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_gradients_reach_the_generator_through_the_augment_and_discriminator():
    torch.manual_seed(0)
    generator = torch.nn.Sequential(torch.nn.Linear(8, 3 * 16 * 16), torch.nn.Tanh(),
                                    torch.nn.Unflatten(1, (3, 16, 16)))
    discriminator = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 1))
    pipeline = augment(p=1.0)
    loss = torch.nn.functional.softplus(-discriminator(pipeline(generator(torch.randn(16, 8))))).mean()
    loss.backward()
    for name, parameter in generator.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


# -- randomness --------------------------------------------------------------------------------
def test_the_same_global_seed_gives_the_same_augmentation():
    x = images()
    pipeline = augment(p=0.7)
    torch.manual_seed(5)
    first = pipeline(x)
    torch.manual_seed(5)
    again = augment(p=0.7)(x)  # a fresh module: nothing random is kept in it
    torch.manual_seed(6)
    other = pipeline(x)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_which_samples_are_augmented_follows_the_global_seed_too():
    x = images(64)
    pipeline = augment(policy="cutout", p=0.5)
    picked = {}
    for seed in (5, 6, 5):
        torch.manual_seed(seed)
        picked.setdefault(seed, []).append(changed_samples(pipeline(x), x))
    assert torch.equal(picked[5][0], picked[5][1])
    assert not torch.equal(picked[5][0], picked[6][0])


def test_it_draws_only_from_torchs_global_generator_and_as_much_whatever_p_is():
    x = images()
    python_state = random.getstate()
    after = []
    for p in (0.0, 0.4, 1.0):
        torch.manual_seed(3)
        augment(p=p)(x)
        after.append(torch.rand(4))
    assert torch.equal(after[0], after[1]) and torch.equal(after[1], after[2]), \
        "the random stream after a batch must not depend on p (a resumed adaptive run replays it)"
    assert random.getstate() == python_state
    assert not any(isinstance(v, torch.Generator) for v in vars(augment()).values())


def test_nothing_reads_values_to_the_host():
    """On the meta device a tensor has no values: .item(), bool() and python `if` on one all raise."""
    pipeline = augment(target=0.6, interval=1).to("meta")
    x = torch.empty(4, 3, 16, 16, device="meta", requires_grad=True)
    out = pipeline(x)
    out.sum().backward()
    pipeline.observe_real(torch.empty(4, 1, device="meta"))
    logged = pipeline.end_step(0)
    assert out.shape == x.shape and set(logged) == {"augment/p", "augment/rt"}
    assert all(v.device.type == "meta" and v.ndim == 0 for v in logged.values())


# -- the adaptive p (StyleGAN2-ADA) ------------------------------------------------------------
def test_an_overfitting_discriminator_raises_p_and_a_fooled_one_lowers_it():
    pipeline = augment(target=0.6, interval=1, speed=100)
    seen = []
    for step in range(5):
        pipeline.observe_real(torch.full((10, 1), 3.0))  # r_t = 1 > 0.6
        logged = pipeline.end_step(step)
        seen.append(float(logged["augment/p"]))
        assert float(logged["augment/rt"]) == 1.0
    assert seen == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5]), "each step moves p by count / speed"
    for step in range(5, 8):
        pipeline.observe_real(-torch.ones(10))  # r_t = -1 < 0.6
        seen.append(float(pipeline.end_step(step)["augment/p"]))
    assert seen[-3:] == pytest.approx([0.4, 0.3, 0.2])


def test_p_stays_in_zero_to_one():
    pipeline = augment(target=0.6, interval=1, speed=10)
    for step in range(4):
        pipeline.observe_real(torch.ones(64))
        pipeline.end_step(step)
    assert float(pipeline.p) == 1.0
    for step in range(4, 8):
        pipeline.observe_real(-torch.ones(64))
        pipeline.end_step(step)
    assert float(pipeline.p) == 0.0


def test_p_moves_only_every_interval_steps_on_everything_seen_since():
    pipeline = augment(target=0.6, interval=4, speed=1000)
    for step in range(1, 4):
        pipeline.observe_real(torch.ones(25))
        pipeline.end_step(step)
        assert float(pipeline.p) == 0.0
    pipeline.observe_real(torch.ones(25))
    pipeline.end_step(4)
    assert float(pipeline.p) == pytest.approx(100 / 1000)
    assert float(pipeline.count) == 0.0 and float(pipeline.sign_sum) == 0.0


def test_r_t_is_the_mean_sign_of_the_real_scores():
    pipeline = augment(target=0.6, interval=1, speed=1000)
    pipeline.observe_real(torch.tensor([2.0, 1.0, 0.5, -1.0]))  # r_t = 0.5 < 0.6: p would drop, stays at 0
    assert float(pipeline.end_step(0)["augment/rt"]) == pytest.approx(0.5)
    assert float(pipeline.p) == 0.0


def test_a_step_with_no_real_scores_leaves_p_alone():
    pipeline = augment(target=0.6, interval=1, speed=100, p=0.5)
    logged = pipeline.end_step(0)
    assert float(pipeline.p) == 0.5 and float(logged["augment/p"]) == 0.5


def test_without_target_p_stays_fixed_and_is_logged():
    pipeline = augment(p=0.3, interval=1)
    for step in range(3):
        pipeline.observe_real(torch.ones(32))
        logged = pipeline.end_step(step)
    assert float(pipeline.p) == pytest.approx(0.3)
    assert float(logged["augment/p"]) == pytest.approx(0.3)
    assert float(logged["augment/rt"]) == 1.0, "r_t is still measured: it shows a discriminator overfitting"


def test_logged_values_are_copies_not_the_buffers():
    pipeline = augment(target=0.6, interval=1, speed=100)
    pipeline.observe_real(torch.ones(10))
    first = pipeline.end_step(0)["augment/p"]
    pipeline.observe_real(torch.ones(10))
    pipeline.end_step(1)
    assert float(first) == pytest.approx(0.1) and float(pipeline.p) == pytest.approx(0.2)


def test_the_state_dict_holds_p_and_the_counts_and_restores_them():
    pipeline = augment(target=0.6, interval=4, speed=100)
    pipeline.observe_real(torch.ones(10))
    pipeline.end_step(0)
    pipeline.observe_real(torch.tensor([1.0, -1.0, 1.0]))
    state = pipeline.state_dict()
    assert {"p", "sign_sum", "count"} <= set(state)
    restored = augment(target=0.6, interval=4, speed=100)
    restored.load_state_dict(state)
    assert float(restored.p) == pytest.approx(0.1)
    assert float(restored.sign_sum) == 1.0 and float(restored.count) == 3.0
    for module in (pipeline, restored):
        module.observe_real(torch.ones(7))
    assert torch.equal(pipeline.end_step(4)["augment/p"], restored.end_step(4)["augment/p"])


# -- refusals ----------------------------------------------------------------------------------
def test_samples_that_are_not_images_are_refused():
    points = NetworkSpec(sample_shape=(2,), latent_dim=8, value_range=None)
    with pytest.raises(IncompatibleError, match=r"images of shape \(C, H, W\).*\(2,\)") as caught:
        augment(points)
    assert "\n" not in str(caught.value)


def test_a_discriminator_of_latent_codes_is_refused():
    latent = NetworkSpec(sample_shape=(1, 16, 16), latent_dim=8, value_range=(-1.0, 1.0),
                         needs=Needs(encoder=True, discriminator_input="latent"))
    with pytest.raises(IncompatibleError, match="latent codes") as caught:
        augment(latent)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("params, message", [
    ({"policy": "color,flip"}, r"unknown transform 'flip' \(valid: color, translation, cutout\)"),
    ({"policy": " , "}, "names no transform"),
    ({"policy": "cutout,cutout"}, "'cutout' more than once"),
    ({"p": 1.5}, r"p must be in \[0, 1\]"),
    ({"p": -0.1}, r"p must be in \[0, 1\]"),
    ({"target": 0.0}, r"target must be in \(0, 1\)"),
    ({"target": 1.2}, r"target must be in \(0, 1\)"),
    ({"interval": 0}, "interval must be at least 1"),
    ({"speed": 0}, "speed must be at least 1"),
    ({"translation_ratio": 0.0}, r"translation_ratio must be in \(0, 1\)"),
    ({"cutout_ratio": 1.0}, r"cutout_ratio must be in \(0, 1\)"),
])
def test_bad_parameters_are_refused(params, message):
    with pytest.raises(ValueError, match=message):
        DiffAugmentParams(**params)


# -- schedules: the engine sets a scheduled value on the parameters object before each step ----
def test_a_fixed_p_follows_the_parameters_object_as_a_schedule_moves_it():
    params = DiffAugmentParams(p=Schedule(1.0, 0.0))
    pipeline = build(params, IMAGES)
    x = images()
    assert changed_samples(x, pipeline(x)).all()
    params.p = 0.0  # what the engine writes at the schedule's end
    assert torch.equal(pipeline(x), x) and float(pipeline.p) == 0.0
    params.p = 0.5
    pipeline(x)
    assert float(pipeline.p) == 0.5 and float(pipeline.end_step(1)["augment/p"]) == 0.5


def test_the_ratios_follow_the_parameters_object_too():
    params = DiffAugmentParams(policy="cutout", p=1.0, cutout_ratio=0.5)
    pipeline = build(params, NetworkSpec(sample_shape=(1, 16, 16), latent_dim=8, value_range=(0.0, 1.0)))
    x = torch.ones(64, 1, 16, 16)
    blanked = lambda: int((pipeline(x) == 0.5).flatten(1).sum(1).max())  # noqa: E731
    assert blanked() == 8 * 8
    params.cutout_ratio = 0.25
    assert blanked() == 4 * 4


def test_with_a_target_ada_owns_p_so_a_schedule_of_p_is_refused():
    with pytest.raises(ValueError, match="schedule target instead"):
        DiffAugmentParams(p=Schedule(0.5, 0.0), target=0.6)
    params = DiffAugmentParams(target=Schedule(0.6, 0.4))
    pipeline = build(params, IMAGES)
    params.target = 0.4
    pipeline(images())
    assert pipeline.target == 0.4


def test_the_policy_accepts_spaces_and_any_order():
    pipeline = augment(policy=" cutout, color ")
    assert pipeline.policy == ("cutout", "color")


def test_the_registering_module_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import gan_registry_diffaugment as m\n"
            "assert m.DiffAugmentParams().policy == 'color,translation,cutout'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_S)
    assert result.returncode == 0, result.stderr


def test_register_augments_registers_diffaugment_on_its_own():
    import gan_registry_diffaugment as plugin
    from gan_registry.testing import isolated_registry

    assert callable(plugin.register_augments)
    component = isolated_registry(plugin).get("augment", "diffaugment")
    assert component.params is DiffAugmentParams and component.factory is build
    assert "\n" not in component.summary
