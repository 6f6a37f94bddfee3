"""Schedules (`schedule(START, END[, SHAPE[, STEPS]])`): their closed forms, the optimiser settings they move,
their checks, and a resumed run that follows the same values as a straight one."""
import json
import math
import re

import pytest
import torch

from gan_registry import Schedule, params as params_mod
from gan_registry.testing import invoke_gan, run_gan

TOY = ["--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "-p", "dataset.count=512",
       "--batch-size", "64", "--log-every", "1", "--no-progress", "--lr-decay-start", "1"]
# --lr-decay-start 1: the toys' suggested decay is a share of each run's length, which a resume changes


def test_cosine_and_linear_move_from_start_to_end_and_then_hold():
    cosine = params_mod.convert("schedule(2e-4, 5e-5)", float)
    assert isinstance(cosine, Schedule) and float(cosine) == 2e-4  # a parameter class checks its start
    assert cosine.at(0, 100) == 2e-4 and math.isclose(cosine.at(50, 100), (2e-4 + 5e-5) / 2)
    assert math.isclose(cosine.at(25, 100), 2e-4 + (1 - math.cos(math.pi / 4)) / 2 * (5e-5 - 2e-4))  # R3GAN's form
    assert cosine.at(100, 100) == cosine.at(10**6, 100) == 5e-5
    linear = params_mod.convert("schedule(0.9, 0.99, linear, 10)", float)
    assert math.isclose(linear.at(5, 1000), 0.945) and linear.at(20, 1000) == 0.99  # its own STEPS win
    betas = params_mod.convert("0, schedule(0.9, 0.99)", tuple[float, float])
    assert betas[0] == 0.0 and isinstance(betas[1], Schedule)


@pytest.mark.parametrize("written, says", [
    ("schedule(1)", "expected schedule(START, END[, cosine|linear[, STEPS]])"),
    ("schedule(1, 2, wavy)", "the shape is one of cosine, linear"),
    ("schedule(1, 2, linear, 0)", "STEPS must be a whole number of at least 1, got 0"),
])
def test_a_malformed_schedule_is_refused_in_one_line(written, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        params_mod.convert(written, float)


def test_a_schedule_is_checked_at_its_end_too_and_the_run_refuses_it(tmp_path):
    result = run_gan("run", *TOY, "--objective", "wgan-gp", "-p", "objective.gp_weight=schedule(1, -1)",
                     "--steps", "2", "--out", tmp_path / "r")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: objective 'wgan-gp', at the end of a schedule: gp_weight must be >= 0, got -1.0"]


def _logged(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_scheduled_optimiser_settings_move_and_are_logged_every_step(tmp_path):
    out = tmp_path / "r"
    result = invoke_gan("run", *TOY, "--steps", "4", "-p", "objective.lr_generator=schedule(2e-4, 1e-4, linear)",
                     "-p", "objective.betas=0.5, schedule(0.9, 0.99, linear)", "--lr-scale", "2", "--out", out)
    assert result.exit_code == 0, result.output
    rows = _logged(out)
    # the value a step trained with: step s (logged after it) used the schedule at s - 1 of 4
    assert [r["schedule/objective.lr_generator"] for r in rows] == [2e-4, 1.75e-4, 1.5e-4, 1.25e-4]
    assert [r["lr/generator"] for r in rows] == [4e-4, 3.5e-4, 3e-4, 2.5e-4]  # times --lr-scale
    assert {r["lr/discriminator"] for r in rows} == {4e-4}  # not scheduled
    assert [r["schedule/objective.betas[1]"] for r in rows] == [0.9, 0.9225, 0.945, 0.9675]
    config = json.loads((out / "config.json").read_text())
    assert config["components"]["objective"]["params"]["lr_generator"] == "schedule(0.0002, 0.0001, linear)"


def _weights(run_dir):
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    return state["models"], state["optimizers"]


def test_a_resumed_run_follows_the_same_schedule_as_a_straight_one(tmp_path):
    schedules = ["-p", "objective.lr_generator=schedule(2e-4, 5e-5, cosine, 6)",
                 "-p", "objective.betas=0.5, schedule(0.9, 0.99, cosine, 6)",
                 "--ema-half-life", "schedule(64, 640, linear)"]  # spans the first training: 6 steps
    straight, half = tmp_path / "straight", tmp_path / "half"
    assert invoke_gan("run", *TOY, *schedules, "--steps", "6", "--out", straight).exit_code == 0
    assert invoke_gan("run", *TOY, *schedules, "--steps", "3", "--out", half).exit_code == 0
    resumed = run_gan("resume", half, "--steps", "6", "--no-progress")  # a fresh process, as a real resume
    assert resumed.returncode == 0, resumed.stderr
    (a, a_opt), (b, b_opt) = _weights(straight), _weights(half)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a_opt["generator"]["param_groups"][0]["betas"] == b_opt["generator"]["param_groups"][0]["betas"]
    assert [r["lr/generator"] for r in _logged(half)] == [r["lr/generator"] for r in _logged(straight)]
    assert any(k.startswith("generator_ema.") for k in a)  # the average, its half-life moving, resumed bit-exact
    assert [r["schedule/ema_half_life"] for r in _logged(straight)] == [160, 256, 352, 448, 544, 640]
    assert json.loads((half / "config.json").read_text())["settings"]["ema_half_life"] == "schedule(64, 640, linear)"


def test_a_scheduled_half_life_sets_the_average_s_decay_at_each_step():
    from gan_registry._callbacks import AverageParams, GeneratorAverage
    from gan_registry._plan import Settings

    settings = Settings(arch="mlp", objective="gan", batch_size=64, ema_half_life="schedule(640, 6400, linear)")
    assert isinstance(settings.ema_half_life, Schedule)
    average = GeneratorAverage(AverageParams(rampup=None))
    for step, half_life in ((0, 640), (50, 3520), (100, 6400), (150, 6400)):
        assert average.decay(settings, step, span=100) == pytest.approx(0.5 ** (64 / half_life))
    ramped = GeneratorAverage()  # StyleGAN2's ramp-up still caps it early on: 5 % of the images seen
    assert ramped.decay(settings, 10, span=100) == pytest.approx(0.5 ** (64 / (10 * 64 * 0.05)))


@pytest.mark.parametrize("written, says", [
    ("schedule(0, 640)", "at least 1 image at either end of its schedule; START is 0"),
    ("schedule(640, 0.5)", "END is 0.5"),
    ("schedule(1, 2, cubic)", "the shape is one of cosine, linear"),
])
def test_a_bad_half_life_schedule_is_refused_in_one_line(written, says):
    result = invoke_gan("run", *TOY, "--ema-half-life", written, "--steps", "1")
    assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output


def test_a_schedule_without_steps_spans_the_first_training_and_holds_its_end_after_a_resume(tmp_path):
    out = tmp_path / "r"
    assert invoke_gan("run", *TOY, "-p", "objective.lr_generator=schedule(2e-4, 1e-4, linear)", "--steps", "2",
                      "--out", out).exit_code == 0
    resumed = invoke_gan("resume", out, "--steps", "4", "--no-progress")
    assert resumed.exit_code == 0, resumed.output
    assert [r["schedule/objective.lr_generator"] for r in _logged(out)] == [2e-4, 1.5e-4, 1e-4, 1e-4]


@pytest.mark.parametrize("param", ["dataset.std=schedule(0.01, 0.02)", "discriminator.acgan_weight=schedule(1, 0.5)"])
def test_a_schedule_of_a_part_built_once_is_refused_not_held_at_its_start(param):
    result = invoke_gan("run", *TOY, "-p", param, "--steps", "1")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "a schedule moves only objective and augment parameters (and --ema-half-life)" in result.output


def test_describe_names_the_parameters_a_schedule_can_move():
    moving = invoke_gan("describe", "rpgan")
    assert "schedules: r1, r2, lr_discriminator, lr_generator, betas also take schedule(START, END" in moving.output
    assert "schedules:" not in invoke_gan("describe", "mlp").output
    [row] = json.loads(invoke_gan("describe", "rpgan", "--json").output)
    assert {p["name"]: p["schedule"] for p in row["parameters"]}["penalty_every"] is False
