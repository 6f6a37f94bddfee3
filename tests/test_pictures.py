"""What a run shows: TensorBoard events (read by tensorboard's own reader), metrics.csv, the GIF of the grids over
training, the closing summary line, `gan plot` and `gan runs`."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from gan_registry import plots
from gan_registry.cli import cli

GAUSSIANS = ["--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "--batch-size", "64",
             "-p", "dataset.count=512", "--no-progress"]


def gan(*args) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def jsonl(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def events(run: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = list(run.rglob("events.out.tfevents.*"))
    assert files, "no event files under the run folder"
    accumulators = []
    for path in files:
        accumulator = EventAccumulator(str(path), size_guidance={"images": 0, "scalars": 0, "histograms": 0})
        accumulator.Reload()
        accumulators.append(accumulator)
    return accumulators


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A short run with every logger and an evaluation mid-run (mode coverage: cheap, no extractor)."""
    run = tmp_path_factory.mktemp("logged") / "run"
    output = gan("run", *GAUSSIANS, "--steps", "12", "--log-every", "3", "--sample-every", "4", "--log", "tensorboard",
                 "--log", "csv", "--eval-every", "6", "--eval-metric", "mode-coverage", "--eval-samples", "256",
                 "-p", "callback.histograms_every=6", "--out", run)
    return run, output


def test_tensorboard_events_hold_the_log_the_grids_and_histograms(logged):
    run, _ = logged
    (board,) = events(run)
    tags = board.Tags()
    records = [r for r in jsonl(run) if "loss/generator" in r]
    # every value of every log line, at its step, as the JSONL log has it
    for key in ("loss/discriminator", "loss/generator", "lr/generator", "discriminator/score_real",
                "discriminator/score_fake", "images_per_s"):
        assert [e.step for e in board.Scalars(key)] == [r["step"] for r in records], key
        assert [e.value for e in board.Scalars(key)] == pytest.approx([r[key] for r in records], rel=1e-6), key
    assert [e.step for e in board.Scalars("eval/high_quality_percent")] == [6, 12]
    grids = board.Images("samples")
    assert [e.step for e in grids] == [4, 8, 12, 12]  # --sample-every, then the final picture
    final = sorted((run / "samples").glob("final-*.png"))[-1]
    assert (grids[-1].width, grids[-1].height) == Image.open(final).size
    histograms = [t for t in tags["histograms"] if t.startswith(("weights/", "gradients/"))]
    assert "weights/generator/net.0.weight" in histograms or any(t.startswith("weights/generator/") for t in histograms)
    assert any(t.startswith("gradients/discriminator/") for t in histograms)
    assert {e.step for e in board.Histograms(histograms[0])} == {6, 12}


def test_csv_log_is_the_jsonl_log_as_one_table(logged):
    run, _ = logged
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    records = jsonl(run)
    assert len(rows) == len(records)
    # the evaluation's columns appeared mid-run: the file was widened, earlier rows keep empty cells
    assert "eval/high_quality_percent" in rows[0] and rows[0]["eval/high_quality_percent"] == ""
    for row, record in zip(rows, records):
        assert {k: float(v) for k, v in row.items() if v != ""} == pytest.approx(
            {k: float(v) for k, v in record.items()})


def test_the_grids_over_training_become_a_gif_and_the_run_ends_with_a_summary(logged):
    run, output = logged
    with Image.open(run / "samples" / "training.gif") as gif:
        assert gif.n_frames == 3  # steps 4, 8, 12 (the final picture is step 12's)
        gif.seek(gif.n_frames - 1)
        last = gif.convert("RGB")
    final = Image.open(sorted((run / "samples").glob("final-*.png"))[-1]).convert("RGB")
    assert last.size == final.size
    line = next(line for line in output.splitlines() if line.startswith(f"{run} at step 12:"))
    for part in ("checkpoints/last.pt", "checkpoints/best.pt", "training.gif", "metrics.jsonl", "metrics.csv",
                 "tensorboard/", "best modes_covered"):
        assert part in line, line


def test_a_resumed_run_logs_each_step_once_in_tensorboard(tmp_path):
    run = tmp_path / "run"
    gan("run", *GAUSSIANS, "--steps", "4", "--log-every", "2", "--log", "tensorboard", "--out", run)
    gan("resume", run, "--steps", "8", "--no-progress")
    steps = sorted(e.step for board in events(run) for e in board.Scalars("loss/generator"))
    assert steps == [2, 4, 6, 8]


def test_smoothing_is_tensorboards_debiased_average():
    assert plots.smooth([5.0, 5.0, 5.0]) == pytest.approx([5.0, 5.0, 5.0])  # no pull towards zero
    assert plots.smooth([0.0, 10.0], 0.6) == pytest.approx([0.0, 0.6 * 0 * 0.4 / 0.64 + 10 * 0.4 / 0.64])
    assert plots.smooth([1.0, 3.0], 0.0) == [1.0, 3.0]


def test_plot_draws_two_runs_on_shared_panels_and_runs_lists_them(logged, tmp_path):
    run, _ = logged
    other = tmp_path / "runs" / "other"
    gan("run", *GAUSSIANS, "--steps", "6", "--log-every", "2", "--seed", "1", "--out", other)
    out = tmp_path / "curves.png"
    assert "wrote" in gan("plot", run, other, "-o", out)
    with Image.open(out) as picture:
        width, height = picture.size
    assert width > 800 and height > 300 and out.stat().st_size > 10_000
    assert plots.choose_keys([jsonl(run), jsonl(other)], ()) == [
        "loss/discriminator", "loss/generator", "eval/high_quality_percent", "eval/modes", "eval/kl"] or all(
        k.startswith(("loss/", "eval/")) for k in plots.choose_keys([jsonl(run)], ()))
    assert plots.choose_keys([jsonl(run)], ("lr/*",)) == ["lr/discriminator", "lr/generator"]

    (tmp_path / "runs" / "logged").symlink_to(run, target_is_directory=True)
    listed = json.loads(gan("runs", tmp_path / "runs", "--json"))
    by_name = {Path(s["run"]).name: s for s in listed}
    assert set(by_name) == {"logged", "other"}
    assert by_name["other"]["combination"] == "mlp + gan on gaussians" and by_name["other"]["step"] == 6
    assert by_name["other"]["last_metric"] is None
    best = by_name["logged"]["best_metric"]
    assert best["key"] == "modes_covered" and best["step"] in (6, 12)
    assert by_name["logged"]["last_metric"]["step"] == 12
    table = gan("runs", tmp_path / "runs")
    assert "combination" in table.splitlines()[0] and "modes_covered" in table


def test_a_toy_runs_scatter_marks_the_mode_centres_in_red(logged, tmp_path):
    import torch

    from gan_registry import render

    run, _ = logged
    red = (214, 39, 40)
    final = Image.open(sorted((run / "samples").glob("final-*.png"))[-1]).convert("RGB")
    assert red in {colour for _, colour in final.getcolors(1 << 16)}
    # at the right place: one centre at (1, 0) on a plot whose extent is set by a point at (-2, 0)
    render.save(torch.tensor([[-2.0, 0.0]]), tmp_path / "s.png", None, centres=torch.tensor([[1.0, 0.0]]))
    picture = Image.open(tmp_path / "s.png").convert("RGB")
    half, extent = render.SCATTER_SIZE / 2, 2.0 * 1.1
    assert picture.getpixel((round(half + 1.0 / extent * half), round(half))) == red
    render.save(torch.tensor([[-2.0, 0.0]]), tmp_path / "plain.png", None)
    assert red not in {c for _, c in Image.open(tmp_path / "plain.png").convert("RGB").getcolors(1 << 16)}
