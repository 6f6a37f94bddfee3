"""mode-coverage through real `gan run` / `gan eval` subprocesses."""
from __future__ import annotations

import json
import os
import subprocess
import sys

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def gan(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gan_registry", *map(str, args)], env=ENV,
                          capture_output=True, text=True, timeout=300)


def test_eval_json_after_a_short_gaussians_run(tmp_path):
    run = tmp_path / "run"
    trained = gan("run", "--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "-p", "dataset.layout=grid",
                  "--steps", 20, "--no-progress", "--out", run)
    assert trained.returncode == 0, trained.stderr
    result = gan("eval", run, "--metric", "mode-coverage", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    values = report["metrics"]["mode-coverage"]
    assert report["samples"] == 2500  # the PacGAN protocol's sample count is gan eval's default
    assert values["modes_total"] == 25
    assert isinstance(values["modes_covered"], int) and 0 <= values["modes_covered"] <= 25
    assert 0.0 <= values["high_quality_percent"] <= 100.0
    assert values["reverse_kl"] >= 0.0
    assert json.loads((run / "eval.json").read_text())["metrics"] == report["metrics"]


def test_eval_on_digits_says_the_metric_does_not_apply(tmp_path):
    run = tmp_path / "run"
    trained = gan("run", "--arch", "mlp", "--objective", "gan", "--dataset", "digits", "--steps", 1,
                  "--batch-size", 8, "--no-progress", "--out", run)
    assert trained.returncode == 0, trained.stderr
    result = gan("eval", run, "--metric", "mode-coverage")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "mode-coverage" in lines[0] and "does not apply" in lines[0] and "mode_centers" in lines[0]
