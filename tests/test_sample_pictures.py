"""Pictures of the model itself: `gan sample --interpolate` (walks, .gif), `--truncation` (sample, eval, export)
and `--nearest` (training neighbours and the memorisation figures), on real tiny runs."""
from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

import gan_registry as gr
from gan_registry import generate, pictures
from gan_registry._components import standard_normal
from gan_registry.plugins import load_registry
from gan_registry.testing import invoke_gan, run_gan

# digits at its default 32 px and seed 0: the classifier extractor the rest of the suite trains serves these too
IMAGES = ["run", "--arch", "mlp", "--objective", "gan", "--dataset", "digits", "--batch-size", "32", "--steps", "2",
          "--no-progress", "--log-every", "1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An image run and its export, a conditional one, and an AAE run (a prior of its own)."""
    root = tmp_path_factory.mktemp("pictures")
    small = ["--image-size", "16", "--batch-size", "16", "--steps", "2", "--no-progress"]
    for args in ([*IMAGES, "--out", root / "digits"],
                 ["run", "--arch", "mlp", "--objective", "gan", "--conditional", *small, "--out", root / "conditional"],
                 ["run", "--arch", "aae", "--objective", "aae", *small, "--out", root / "aae"]):
        result = invoke_gan(*args)
        assert result.exit_code == 0, result.output
    assert invoke_gan("export", root / "digits", "-o", root / "digits.safetensors").exit_code == 0
    return root


def loaded(path):
    return generate.load_generator(load_registry(), path)


def test_slerp_keeps_to_the_sphere_between_its_two_end_points():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 256, generator=g), torch.randn(2, 256, generator=g)
    t = torch.linspace(0, 1, 9)
    path = pictures.slerp(a, b, t)
    assert torch.allclose(path[:, 0], a, atol=1e-5) and torch.allclose(path[:, -1], b, atol=1e-5)
    # two points of one norm r: the arc keeps r exactly (sin^2 + sin^2 + 2 sin sin cos = sin^2 omega)
    r = math.sqrt(256)
    same = pictures.slerp(a / a.norm(dim=1, keepdim=True) * r, b / b.norm(dim=1, keepdim=True) * r, t)
    assert torch.allclose(same.norm(dim=-1), torch.full((2, 9), r), rtol=1e-4)
    # Gaussian points: slerp stays near sqrt(d); a straight line sags to about sqrt(d / 2) midway
    assert ((path.norm(dim=-1) / r - 1).abs() < 0.15).all()
    assert pictures.lerp(a, b, t)[:, 4].norm(dim=-1).div(r).sub(1 / math.sqrt(2)).abs().max() < 0.1
    parallel = pictures.slerp(a, 2 * a, t)  # omega = 0: the arc's formula is 0/0, the line is the answer
    assert torch.isfinite(parallel).all() and torch.allclose(parallel, pictures.lerp(a, 2 * a, t), atol=1e-5)


def test_a_walk_row_starts_and_ends_at_samples_draw_makes(runs, tmp_path):
    result = invoke_gan("sample", runs / "digits", "--interpolate", "-n", 24, "--interpolate-steps", 6,
                        "-o", tmp_path / "walk.pt")
    assert result.exit_code == 0, result.output
    walk = torch.load(tmp_path / "walk.pt").view(4, 6, 1, 32, 32)
    source = loaded(runs / "digits")
    ends = generate.draw(source.generator, source.prior, source.latent_dim, 8, seed=0)
    assert torch.allclose(walk[:, 0], ends[:4], atol=1e-5) and torch.allclose(walk[:, -1], ends[4:], atol=1e-5)
    assert not torch.allclose(walk[:, 1], walk[:, 0], atol=1e-3)  # the steps between are new samples
    assert invoke_gan("sample", runs / "digits", "--interpolate", "-o", tmp_path / "walk.png").exit_code == 0
    with Image.open(tmp_path / "walk.png") as image:  # 8 rows of 8 steps of 32 px, 2 px apart
        assert image.size == (8 * 34 + 2, 8 * 34 + 2)
    from_api = gr.Run.open(runs / "digits").sample(24, interpolate=True, interpolate_steps=6)
    assert torch.equal(from_api, walk)


def test_a_gif_walk_loops_through_its_points_a_frame_a_step(runs, tmp_path):
    result = invoke_gan("sample", runs / "digits", "--interpolate", "--interpolate-steps", 3, "-n", 4,
                        "-o", tmp_path / "walk.gif")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "walk.gif") as image:
        assert image.n_frames == pictures.LOOP_POINTS * 3 and image.size == (2 * 34 + 2, 2 * 34 + 2)
        assert image.info["loop"] == 0
    source = loaded(runs / "digits")
    drawn = pictures.walk_loop(source, 4, 3, seed=0)
    points = generate.latents(source.prior, source.latent_dim, pictures.LOOP_POINTS * 4, 0)
    points = points.view(-1, 4, source.latent_dim)
    assert torch.allclose(drawn.latents[::3], points, atol=1e-5)  # each leg starts at a point of the seed
    looped = torch.cat([drawn.latents, drawn.latents[:1]])  # from the last frame back to the first: no jump
    steps = (looped[1:] - looped[:-1]).norm(dim=-1)
    assert steps[-1].max() < 1.5 * steps[:-1].max()


def test_a_conditional_walk_keeps_each_row_to_its_class(runs, tmp_path):
    source = loaded(runs / "conditional")
    every = pictures.walk_rows(source, 10, 4, seed=0)
    assert every.labels.tolist() == list(range(10))
    threes = pictures.walk_rows(source, 3, 4, seed=0, chosen=[3])
    assert threes.labels.tolist() == [3, 3, 3]
    ends = generate.draw(source.generator, source.prior, source.latent_dim, 6, 0, labels=torch.full((6,), 3))
    assert torch.allclose(threes.samples[:, 0], ends[:3], atol=1e-5)
    result = invoke_gan("sample", runs / "conditional", "--interpolate", "--class", "3", "-o", tmp_path / "t.png")
    assert result.exit_code == 0, result.output


def test_truncation_keeps_every_latent_value_inside_psi_seed_by_seed():
    z = generate.latents(standard_normal, 64, 3000, seed=5, truncation=0.5)
    assert z.abs().max() <= 0.5 and z.std() > 0.2  # a truncated normal, not a squashed one (std 0.28 at 0.5)
    assert torch.equal(z, generate.latents(standard_normal, 64, 3000, seed=5, truncation=0.5))
    assert not torch.equal(z, generate.latents(standard_normal, 64, 3000, seed=6, truncation=0.5))


def test_truncated_samples_are_the_same_from_a_run_and_its_export(runs, tmp_path):
    for name in ("digits", "digits.safetensors"):
        result = invoke_gan("sample", runs / name, "--truncation", 0.7, "-n", 10, "-o", tmp_path / f"{name}.pt")
        assert result.exit_code == 0, result.output
    from_run, from_export = (torch.load(tmp_path / f"{name}.pt") for name in ("digits", "digits.safetensors"))
    assert torch.equal(from_run, from_export)
    assert not torch.equal(from_run, gr.Run.open(runs / "digits").sample(10))
    assert torch.equal(from_run, gr.Run.open(runs / "digits").sample(10, truncation=0.7))


def test_eval_measures_truncated_samples_and_says_so(runs):
    def fid(*args):
        result = invoke_gan("eval", runs / "digits", "--metric", "fid", "--samples", 200, "--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    plain, truncated = fid(), fid("--truncation", 0.5)
    assert truncated["truncation"] == 0.5 and "truncation psi 0.5" in truncated["protocol"]["generated"]
    assert truncated["metrics"]["fid"]["fid"] != plain["metrics"]["fid"]["fid"] and "truncation" not in plain


@pytest.mark.parametrize("args, message", [
    (["sample", "{digits}", "--truncation", "0", "-o", "x.png"], "PSI must be above 0"),
    (["sample", "{digits}", "--truncation", "-1", "-o", "x.png"], "PSI must be above 0"),
    (["eval", "{digits}", "--truncation", "0", "--metric", "fid"], "PSI must be above 0"),
    (["eval", "{aae}", "--truncation", "0.5", "--metric", "fid"], "a prior of its own"),
    (["sample", "{digits}", "--interpolate", "--nearest", "-o", "x.png"], "not both"),
    (["sample", "{digits}", "--interpolate", "--interpolate-steps", "1", "-o", "x.png"], "at least 2 steps"),
    (["sample", "{digits}", "--interpolate-steps", "4", "-o", "x.png"], "--interpolate-steps sets"),
    (["sample", "{digits}", "--nearest-k", "4", "-o", "x.png"], "--nearest-k and --extractor set"),
    (["sample", "{digits}", "-o", "x.gif"], "use a .png, .pt or .npy"),
    (["sample", "{digits}", "--nearest", "-o", "x.npy"], "use a .png file name"),
    (["sample", "{export}", "--nearest", "-o", "x.png"], "give the run folder"),
    (["sample", "{conditional}", "--interpolate", "--class", "99", "-o", "x.png"], "--class 99"),
])
def test_misuse_is_a_one_line_error(runs, tmp_path, args, message):
    sources = {"digits": runs / "digits", "export": runs / "digits.safetensors", "aae": runs / "aae",
               "conditional": runs / "conditional"}
    result = invoke_gan(*(a.format(**sources) for a in args))
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.strip().count("\n") == 0, result.output


def test_truncating_an_objective_prior_is_refused_in_a_real_subprocess(runs, tmp_path):
    result = run_gan("sample", runs / "aae", "--truncation", "0.5", "-o", tmp_path / "x.png")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("Error: --truncation resamples N(0, I) noise, and this generator's objective "
                                     "draws its latents from a prior of its own")
    walk = gr.Run.open(runs / "aae").sample(8, interpolate=True, interpolate_steps=4)  # a walk needs no N(0, I)
    assert walk.shape[:2] == (2, 4) and pictures.interpolation_for(loaded(runs / "aae").prior) is pictures.lerp


def test_training_images_are_their_own_nearest_neighbours(runs):
    source = loaded(runs / "digits")
    neighbours = pictures.TrainingNeighbours.of_run(load_registry(), source.plan)
    images = torch.stack([neighbours.image(i) for i in (0, 7, 500)])
    distances, indices = neighbours.nearest(neighbours.features_of(images, source.value_range), 3)
    assert (distances[:, 0] < 1e-3).all() and (distances[:, 1:] > distances[:, :1]).all()
    assert all(torch.equal(neighbours.image(i), image) for i, image in zip(indices[:, 0].tolist(), images))


def test_nearest_writes_rows_of_a_sample_and_its_neighbours_with_the_fid_gap(runs, tmp_path):
    result = invoke_gan("sample", runs / "digits", "--nearest", "-n", 3, "--nearest-k", 2, "-o", tmp_path / "n.png")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "n.png") as image:  # 3 rows of a sample and 2 neighbours
        assert image.size == (3 * 34 + 2, 3 * 34 + 2)
    lines = result.output.splitlines()
    fids = {line.split("split")[0].split()[-1]: float(line.rsplit(":", 1)[1])
            for line in lines if line.strip().startswith("FID vs")}
    gap = next(line for line in lines if "FID gap" in line)
    assert set(fids) == {"training", "held-out"} and "180 of 1,617 images" in result.output
    assert float(gap.split(":")[1].split()[0]) == pytest.approx(fids["held-out"] - fids["training"], abs=0.011)
    assert "held-out images" in lines[-1] and "classifier" in lines[0]


def test_nearest_is_for_image_runs_only(tmp_path):
    from gan_registry.testing import train_briefly

    train_briefly(tmp_path / "ring", arch="mlp", objective="gan", dataset="gaussians")
    result = invoke_gan("sample", tmp_path / "ring", "--nearest", "-o", tmp_path / "x.png")
    assert result.exit_code == 2 and "--nearest compares images" in result.output
