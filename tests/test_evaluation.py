"""Evaluation during training (`--eval-every`) and `gan eval` on image runs, with the real classifier extractor."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from gan_registry import checkpoint
from gan_registry.cli import cli

RUN = ["run", "--arch", "mlp", "--objective", "gan", "--dataset", "digits", "--batch-size", "32",
       "--no-progress", "--sample-every", "1000", "--log-every", "10"]
EVAL = ["--eval-every", "10", "--eval-samples", "300", "--eval-metric", "fid", "--eval-metric", "kid",
        "-p", "metric.subset_size=100", "-p", "metric.subsets=10"]


def gan(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def weights(run_dir, name="last.pt"):
    return checkpoint.load(run_dir / "checkpoints" / name)["models"]


def evaluations(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if "eval/fid" in r], [r for r in lines if "final/fid" in r]


def test_evaluation_keeps_the_best_step_and_changes_no_training(tmp_path):
    evaluated, plain = tmp_path / "evaluated", tmp_path / "plain"
    result = gan(*RUN, "--steps", 40, "--out", evaluated, *EVAL)
    assert result.exit_code == 0, result.output
    assert gan(*RUN, "--steps", 40, "--out", plain).exit_code == 0
    a, b = weights(evaluated), weights(plain)
    assert all(torch.equal(a[k], b[k]) for k in a)  # evaluation draws its own noise and leaves every RNG alone

    records, final = evaluations(evaluated)
    assert [r["step"] for r in records] == [10, 20, 30, 40]
    best = min(records, key=lambda r: r["eval/fid"])
    state = checkpoint.load(evaluated / "checkpoints" / "best.pt")
    assert state["step"] == best["step"] == records[-1]["eval/best_step"]
    assert state["callbacks"]["evaluation"]["best"]["value"] == pytest.approx(best["eval/fid"])
    assert len(final) == 1 and final[0]["final/fid"] != records[-1]["eval/fid"]  # fresh samples, another seed
    assert "kid_mean" in " ".join(records[0])


def test_resume_with_evaluation_is_bit_exact(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert gan(*RUN, "--steps", 30, "--out", straight, *EVAL).exit_code == 0
    assert gan(*RUN, "--steps", 20, "--out", resumed, *EVAL).exit_code == 0
    assert gan("resume", resumed, "--steps", 30, "--no-progress").exit_code == 0
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert evaluations(straight)[0][-1]["eval/fid"] == pytest.approx(evaluations(resumed)[0][-1]["eval/fid"])
    best = [checkpoint.load(d / "checkpoints" / "last.pt")["callbacks"]["evaluation"] for d in (straight, resumed)]
    assert best[0] == best[1]


def test_trained_generator_scores_better_than_untrained_and_than_noise(tmp_path):
    trained, untrained = tmp_path / "trained", tmp_path / "untrained"
    assert gan(*RUN, "--steps", 400, "--out", trained).exit_code == 0
    assert gan(*RUN, "--steps", 1, "--out", untrained).exit_code == 0
    noise = tmp_path / "noise"
    noise.mkdir()
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for i in range(500):
        Image.fromarray((torch.rand(32, 32, generator=g) * 255).to(torch.uint8).numpy()).save(noise / f"{i}.png")

    def fid(*source):
        result = gan("eval", *source, "--metric", "fid", "--samples", 500, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["metrics"]["fid"]["fid"]

    scores = {"trained": fid(trained), "untrained": fid(untrained), "noise": fid("--real", "digits", "--fake", noise)}
    print("digits classifier-FID, 500 samples:", scores)
    assert scores["trained"] < scores["untrained"] and scores["trained"] < scores["noise"]
    best = gan("eval", trained, "--checkpoint", "best", "--metric", "fid")
    assert best.exit_code == 2 and "best.pt" in best.output  # kept only by runs with --eval-every


@pytest.mark.parametrize("args, message", [
    (["--eval-every", "5", "--eval-metric", "nope"], "unknown metric 'nope'"),
    (["--eval-metric", "fid"], "give --eval-every"),
    (["--eval-every", "5", "--extractor", "nope"], "unknown extractor 'nope'"),
    (["--eval-every", "5", "-p", "extractor.nope=1"], "nope"),
    (["-p", "metric.subsets=3"], "--eval-every"),
    (["--eval-every", "0"], "at least 1"),
])
def test_evaluation_settings_are_refused_before_training(tmp_path, args, message):
    result = gan(*RUN, "--steps", 2, "--out", tmp_path / "run", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "run" / "checkpoints").exists()
