"""The objectives through real `gan` subprocesses: negotiation, parameters, and short runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

OBJECTIVES = ["gan", "wgan", "wgan-gp", "hinge", "lsgan"]
# Tiny networks in parallel subprocesses: one thread each, or they stall each other on a small machine.
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
EXTRA = {"wgan-gp": ["-p", "objective.gp_weight=5", "-p", "objective.betas=0.5,0.9", "-p", "objective.critic_steps=2"]}


def gan_command(*args) -> list[str]:
    return [sys.executable, "-m", "gan_registry", *map(str, args)]


def gan(*args) -> subprocess.CompletedProcess:
    return subprocess.run(gan_command(*args), env=ENV, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory):
    """A 20-step gaussians run per objective, started together so their start-up overlaps."""
    root = tmp_path_factory.mktemp("runs")
    started = {}
    for name in OBJECTIVES:
        out = root / name
        command = gan_command("run", "--arch", "mlp", "--objective", name, "--dataset", "gaussians", "--steps", 20,
                              "--log-every", 10, "--no-progress", "--out", out, *EXTRA.get(name, []))
        started[name] = (out, subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                text=True))
    finished = {}
    for name, (out, process) in started.items():
        output, _ = process.communicate(timeout=300)
        finished[name] = (out, process.returncode, output)
    return finished


@pytest.mark.parametrize("name", OBJECTIVES)
def test_short_gaussians_run_exits_0(short_runs, name):
    out, returncode, output = short_runs[name]
    assert returncode == 0, output
    assert (out / "checkpoints" / "last.pt").is_file()
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 20


def test_wgan_gp_run_logs_its_extras_and_takes_its_parameters(short_runs):
    out, returncode, output = short_runs["wgan-gp"]
    assert returncode == 0, output
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"loss/critic", "loss/generator", "critic/gp", "critic/wasserstein"} <= set(record)
    params = json.loads((out / "config.json").read_text())["components"]["objective"]["params"]
    assert params == {"gp_weight": 5.0, "critic_steps": 2, "lr_critic": 2e-4, "lr_generator": 2e-4, "betas": [0.5, 0.9]}


def test_batchnorm_critic_is_refused_with_one_line(tmp_path):
    result = gan("run", "--arch", "mlp", "--objective", "wgan-gp", "-p", "discriminator.norm=batch",
                 "--dataset", "gaussians", "--steps", 1, "--no-progress", "--out", tmp_path / "run")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "wgan-gp" in lines[0] and "norm=batch" in lines[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_layer_norm_critic_is_accepted(tmp_path):
    result = gan("run", "--arch", "mlp", "--objective", "wgan-gp", "-p", "discriminator.norm=layer",
                 "--dataset", "gaussians", "--steps", 2, "--no-progress", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr


def test_bad_parameter_is_refused_with_one_line(tmp_path):
    result = gan("run", "--arch", "mlp", "--objective", "wgan", "-p", "objective.clip_value=-1",
                 "--dataset", "gaussians", "--steps", 1, "--no-progress", "--out", tmp_path / "run")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "clip_value" in lines[0], result.stderr


def test_describe_shows_the_requirement_and_parameters():
    result = gan("describe", "wgan-gp")
    assert result.returncode == 0, result.stderr
    assert "needs: no BatchNorm in the discriminator" in result.stdout
    for name in ("gp_weight", "critic_steps", "lr_critic", "lr_generator", "betas"):
        assert name in result.stdout
