"""diffaugment through the `gan` command line, in this process (click's CliRunner): the plugin as users meet it.

Kept last (this file sorts after test_pipeline.py): these are the slow ones.
"""
from __future__ import annotations

import json

import pytest
import torch
from gan_registry.testing import invoke_gan


def error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


def test_it_is_listed_and_described():
    listed = invoke_gan("list", "augments")
    assert listed.exit_code == 0, listed.output
    assert "diffaugment" in listed.output
    described = invoke_gan("describe", "diffaugment")
    assert described.exit_code == 0, described.output
    for name in ("policy", "p ", "target", "interval", "speed", "translation_ratio", "cutout_ratio"):
        assert name in described.output


def test_a_bad_parameter_is_refused_in_one_line():
    result = invoke_gan("run", "--arch", "dcgan", "--objective", "gan", "--dataset", "digits", "--steps", 1,
                        "--augment", "diffaugment", "-p", "augment.policy=color,flip")
    assert result.exit_code == 2, result.output
    lines = error_lines(result)
    assert len(lines) == 1 and "unknown transform 'flip'" in lines[0], result.output


def test_points_are_refused_in_one_line_before_training():
    result = invoke_gan("run", "--arch", "mlp", "--objective", "gan", "--dataset", "gaussians",
                        "--augment", "diffaugment")
    assert result.exit_code == 2, result.output
    lines = error_lines(result)
    assert len(lines) == 1, result.output
    assert "augment 'diffaugment' does not fit this run" in lines[0] and "(C, H, W)" in lines[0]


def test_an_adaptive_digits_run_logs_p_and_checkpoints_the_augment(tmp_path):
    out = tmp_path / "run"
    result = invoke_gan("run", "--arch", "dcgan", "--objective", "gan", "--dataset", "digits", "--steps", 4,
                        "--seed", 0, "--augment", "diffaugment", "-p", "augment.target=0.6", "--out", out,
                        "--no-progress", "--log-every", 1, "--batch-size", 16)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    for record in records:
        assert 0.0 <= record["augment/p"] <= 1.0 and -1.0 <= record["augment/rt"] <= 1.0
    config = json.loads((out / "config.json").read_text())["components"]["augment"]
    assert config["name"] == "diffaugment" and config["params"]["target"] == 0.6
    state = torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)["augment"]
    assert {"p", "sign_sum", "count"} <= set(state)
    # Steps 1-3 after the adjustment of step 0 fed the counts: 16 real scores a step.
    assert float(state["count"]) == 3 * 16


def test_a_scheduled_p_is_what_the_pipeline_applies_at_each_step(tmp_path):
    out = tmp_path / "run"
    result = invoke_gan("run", "--arch", "mlp", "--objective", "gan", "--dataset", "digits", "--steps", 8,
                        "--augment", "diffaugment", "-p", "augment.p=schedule(1, 0, linear)", "--out", out,
                        "--no-progress", "--log-every", 1, "--batch-size", 16)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    scheduled = [r["schedule/augment.p"] for r in records]
    assert scheduled == sorted(scheduled, reverse=True) and scheduled[-1] < 0.2
    # A log line's augment/p is the mean over its steps: one step a line here, so it is that step's p.
    assert [r["augment/p"] for r in records] == pytest.approx(scheduled)
