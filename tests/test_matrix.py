"""`gan matrix`: every accepted pair in its own run folder, measured against the floor; resumable; refused pairs
named; and the machinery a matrix relies on: where each default comes from, the thread count, progress lines."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gan_registry import Architecture, Dataset, Objective, Scale, UserError, hookimpl
from gan_registry._plan import Settings, make_plan
from gan_registry.testing import HANG_S, isolated_registry, run_gan, toy_plugin

PAIR = ["--dataset", "digits", "--arch", "mlp", "--objective", "gan", "--objective", "hinge", "--steps", "4",
        "--samples", "200", "--workers", "2"]


def test_two_cells_train_in_their_own_folders_and_the_matrix_writes_its_table_and_pictures(tmp_path):
    result = run_gan("matrix", *PAIR, "--out", tmp_path / "m")
    assert result.returncode == 0, result.stderr
    assert "matrix: 2 pairs accepted (0 already done, 2 to train), 0 refused" in result.stderr
    assert "real-vs-real floor of digits" in result.stderr
    data = json.loads((tmp_path / "m" / "matrix.json").read_text())
    cells = {(c["arch"], c["objective"]): c for c in data["cells"]}
    assert set(cells) == {("mlp", "gan"), ("mlp", "hinge")}
    floor = data["floors"]["digits"]["metrics"]["fid"]
    for cell in cells.values():
        assert cell["status"] == "done", cell
        assert cell["steps"] == 4 and cell["cpu_minutes"] > 0 and cell["wall_s"] > 0
        assert cell["fid_x_floor"] == pytest.approx(cell["metrics"]["fid"] / floor, rel=1e-3)
        assert cell["fid_x_floor"] > 3  # four steps of training are far from real digits
        assert (tmp_path / "m" / cell["run"] / "checkpoints" / "last.pt").is_file()
        assert (tmp_path / "m" / cell["grid"]).is_file()
    rows = (tmp_path / "m" / "matrix.csv").read_text().splitlines()
    assert rows[0].startswith("dataset,arch,objective,status,steps,fid,fid_floor,fid_x_floor") and len(rows) == 3
    for picture in ("heatmap.png", "contact-sheet.png"):
        assert (tmp_path / "m" / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shown = run_gan("matrix", "show", tmp_path / "m")
    assert shown.returncode == 0 and "| digits | mlp | hinge | 4 |" in shown.stdout and "floor of digits" in shown.stdout


def test_a_killed_matrix_goes_on_where_it_stopped_and_keeps_finished_cells(tmp_path):
    out = tmp_path / "m"
    args = [sys.executable, "-m", "gan_registry", "matrix", *PAIR[:-2], "--workers", "1", "--out", str(out)]
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    done = None
    deadline = time.monotonic() + HANG_S
    while done is None and time.monotonic() < deadline and first.poll() is None:
        done = next(iter(out.glob("cells/*/cell.json")), None)
        time.sleep(0.2)
    assert done is not None, first.stderr.read() if first.stderr else ""
    os.killpg(first.pid, signal.SIGKILL)  # the matrix and the cell it trains, as a power cut would
    first.wait()
    kept = done.parent / "checkpoints" / "last.pt"
    before = kept.stat().st_mtime_ns
    again = run_gan("matrix", *PAIR[:-2], "--workers", "1", "--out", out)
    assert again.returncode == 0, again.stderr
    assert "(1 already done, 1 to train)" in again.stderr
    assert kept.stat().st_mtime_ns == before
    assert all(c["status"] == "done" for c in json.loads((out / "matrix.json").read_text())["cells"])
    third = run_gan("matrix", *PAIR[:-2], "--workers", "1", "--out", out)
    assert third.returncode == 0 and "(2 already done, 0 to train)" in third.stderr


def test_refused_pairs_are_listed_with_the_plans_reason_and_never_trained(tmp_path):
    result = run_gan("matrix", "--arch", "aae", "--objective", "wgan-gp", "--objective", "aae", "--steps", "2",
                     "--samples", "100", "--workers", "1", "--out", tmp_path / "m")
    assert result.returncode == 0, result.stderr
    assert "refused: aae + wgan-gp on digits: architecture 'aae' is an encoder/decoder pair" in result.stderr
    cells = json.loads((tmp_path / "m" / "matrix.json").read_text())["cells"]
    refused = [c for c in cells if c["status"] == "refused"]
    assert [(c["arch"], c["objective"]) for c in refused] == [("aae", "wgan-gp")] and refused[0]["reason"]
    assert not (tmp_path / "m" / "cells" / "aae-wgan-gp-digits").exists()
    assert "refused: architecture 'aae' is an encoder/decoder pair" in run_gan("matrix", "show", tmp_path / "m").stdout


@pytest.mark.parametrize("args, message", [
    (["matrix", "--arch", "nope"], "unknown architecture 'nope'"),
    (["matrix", "--dataset", "digits:size"], "write parameters as NAME:PARAM=VALUE"),
    (["matrix", "show", "."], "holds no matrix.json"),
])
def test_matrix_mistakes_are_one_line(tmp_path, args, message):
    result = run_gan(*args, "--out", tmp_path / "m") if args[1] != "show" else run_gan(*args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_crafted_matrix_json_is_refused_in_one_line(tmp_path):
    (tmp_path / "matrix.json").write_text('{"cells": 3}')
    result = run_gan("matrix", "show", tmp_path)
    assert result.returncode == 2 and "not a matrix file" in result.stderr


# -- where defaults come from -------------------------------------------------------------------------------------
class _Suggesting:
    @hookimpl
    def register_architectures(self, register):
        register(Architecture(name="costly", summary="toy pieces that suggest a budget", generator="toy",
                              discriminator="toy", latent_dim=8, suggests={"steps": 300, "batch_size": 16}))

    @hookimpl
    def register_objectives(self, register):
        toy = toy_plugin_objective()
        register(Objective(name="critic", summary="toy loss that suggests fewer steps", params=toy.params,
                           factory=toy.factory, suggests={"steps": 60, "lr_scale": 0.5}))


def toy_plugin_objective():
    registry = isolated_registry(toy_plugin)
    return registry.get("objective", "toy")


def test_defaults_come_from_the_dataset_then_the_objective_then_the_architecture_then_the_engine():
    registry = isolated_registry(toy_plugin, ("suggesting", _Suggesting()))
    plan = make_plan(registry, Settings(arch="costly", objective="critic", dataset="toy"), for_training=False)
    assert (plan.settings.steps, plan.settings.batch_size, plan.settings.lr_scale) == (60, 16, 0.5)
    assert plan.defaults_from == {"steps": "objective 'critic'", "lr_scale": "objective 'critic'",
                                  "batch_size": "architecture 'costly'",
                                  "latent_dim": "architecture 'costly' (its latent_dim)"}
    plain = make_plan(registry, Settings(arch="costly", objective="toy", dataset="toy"), for_training=False)
    assert plain.settings.steps == 300 and plain.defaults_from["steps"] == "architecture 'costly'"
    engine = make_plan(registry, Settings(arch="toy", objective="toy", dataset="toy"), for_training=False)
    assert engine.settings.epochs == 100 and engine.defaults_from["epochs"] == "engine default"
    mine = make_plan(registry, Settings(arch="costly", objective="critic", dataset="toy", epochs=2, batch_size=8),
                     for_training=False)
    assert mine.settings.steps is None and "steps" not in mine.defaults_from and "batch_size" not in mine.defaults_from


class _Scaling:
    @hookimpl
    def register_objectives(self, register):
        toy = toy_plugin_objective()
        register(Objective(name="dear", summary="toy loss whose steps cost five", params=toy.params,
                           factory=toy.factory, suggests={"steps": Scale(0.4), "lr_scale": Scale(2)}))


def test_a_scale_suggestion_takes_a_share_of_what_the_sources_below_chose():
    registry = isolated_registry(toy_plugin, ("suggesting", _Suggesting()), ("scaling", _Scaling()))
    costly = make_plan(registry, Settings(arch="costly", objective="dear", dataset="toy"), for_training=False)
    assert (costly.settings.steps, costly.settings.lr_scale) == (120, 2.0)  # 0.4 x 300 steps; 2 x the engine's 1
    assert costly.defaults_from["steps"] == "objective 'dear', 0.4x architecture 'costly'"
    assert costly.defaults_from["lr_scale"] == "objective 'dear', 2x the engine's default"
    cheap = make_plan(registry, Settings(arch="toy", objective="dear", dataset="toy"), for_training=False)
    # nothing suggests steps: the engine's 100 epochs stand (an epoch already counts the critic's batches)
    assert (cheap.settings.steps, cheap.settings.epochs) == (None, 100)
    assert cheap.defaults_from["epochs"] == "engine default"
    mine = make_plan(registry, Settings(arch="costly", objective="dear", dataset="toy", steps=7, lr_scale=3.0),
                     for_training=False)
    assert (mine.settings.steps, mine.settings.lr_scale) == (7, 3.0) and "steps" not in mine.defaults_from


class _ParamSuggesting:
    @hookimpl
    def register_datasets(self, register):
        toy = isolated_registry(toy_plugin).get("dataset", "toy")
        register(Dataset(name="scaled", summary="toy data whose scale wants a lighter penalty", params=toy.params,
                         factory=toy.factory, suggests={"objective.gp_weight": 0.1, "objective.absent": 3}))

    @hookimpl
    def register_architectures(self, register):
        register(Architecture(name="recipe", summary="toy pieces with a paper's recipe", generator="toy",
                              discriminator="toy", latent_dim=8,
                              suggests={"objective.gp_weight": 5.0, "objective.lr": 0.01}))

    @hookimpl
    def register_objectives(self, register):
        register(Objective(name="penalised", summary="toy loss with a penalty weight", params=_PenaltyParams,
                           factory=toy_plugin_objective().factory))


@dataclasses.dataclass
class _PenaltyParams:
    gp_weight: float = 10.0
    lr: float = 1e-3


def test_a_component_may_suggest_the_objectives_parameters_where_it_has_them():
    registry = isolated_registry(toy_plugin, ("params", _ParamSuggesting()))
    plan = make_plan(registry, Settings(arch="recipe", objective="penalised", dataset="scaled"), for_training=False)
    # the dataset's weight wins over the architecture's; a parameter the objective lacks is passed over
    assert (plan.params["objective"].gp_weight, plan.params["objective"].lr) == (0.1, 0.01)
    assert plan.defaults_from["objective.gp_weight"] == "dataset 'scaled'"
    assert plan.defaults_from["objective.lr"] == "architecture 'recipe'" and "objective.absent" not in plan.defaults_from
    # stored with the run like -p, so a rebuilt run (resume, sample) has the same values without suggestions
    assert plan.settings.params["objective"] == {"gp_weight": 0.1, "lr": 0.01}
    rebuilt = make_plan(registry, plan.settings, take_suggestions=False, for_training=False)
    assert rebuilt.params["objective"].gp_weight == 0.1
    mine = make_plan(registry, Settings(arch="recipe", objective="penalised", dataset="scaled",
                                        params={"objective": {"gp_weight": "2"}}), for_training=False)
    assert mine.params["objective"].gp_weight == 2.0 and "objective.gp_weight" not in mine.defaults_from
    toy = make_plan(registry, Settings(arch="recipe", objective="toy", dataset="scaled"), for_training=False)
    # the toy objective has an lr and no gp_weight
    assert [key for key in toy.defaults_from if "." in key] == ["objective.lr"] and toy.params["objective"].lr == 0.01


def test_a_scale_is_refused_where_it_means_nothing():
    with pytest.raises(ValueError, match="'latent_dim' cannot be a Scale"):
        Architecture(name="odd", summary="x", generator="toy", discriminator="toy", suggests={"latent_dim": Scale(2)})
    with pytest.raises(ValueError, match="Scale factor must be a number > 0"):
        Scale(0)


def test_a_suggestion_outside_the_run_settings_is_refused_when_registered():
    with pytest.raises(ValueError, match="architecture 'odd': cannot suggest 'depth'"):
        Architecture(name="odd", summary="x", generator="toy", discriminator="toy", suggests={"depth": 3})


def test_the_run_says_where_its_defaults_came_from_and_keeps_that_on_resume(tmp_path):
    first = run_gan("run", "--arch", "mlp", "--objective", "gan", "--steps", "2", "--out", tmp_path / "r")
    assert first.returncode == 0, first.stderr
    assert "defaults: ema_half_life=10000 (dataset 'digits'); batch_size=64 (engine default)" in first.stdout
    assert "training from step 0 to 2 on 1 CPU thread" in first.stderr and "step 1/2:" in first.stderr
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["defaults_from"]["batch_size"] == "engine default"
    assert config["threads"]["count"] == 1 and "GAN_REGISTRY_THREADS" in config["threads"]["why"]
    resumed = run_gan("resume", tmp_path / "r", "--steps", "3", "--threads", "2")
    assert resumed.returncode == 0, resumed.stderr
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["defaults_from"]["ema_half_life"] == "dataset 'digits'"
    assert config["threads"] == {"count": 2, "why": "--threads"}


# -- threads ------------------------------------------------------------------------------------------------------
def test_the_thread_count_is_asked_or_set_by_the_starter_or_kept_or_the_free_share(monkeypatch):
    from gan_registry import _threads

    for name in (_threads.ENV, "OMP_NUM_THREADS", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_threads, "usable_cores", lambda: 8)
    monkeypatch.setattr(_threads, "_busy_cores", lambda: 0.0)
    assert _threads.choose(3) == (3, "--threads")
    assert _threads.choose(None, recorded=5)[0] == 5
    assert _threads.choose()[0] == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun's processes share the cores
    assert _threads.choose()[0] == 2
    monkeypatch.setattr(_threads, "_busy_cores", lambda: 7.2)  # another job keeps most cores busy
    count, why = _threads.choose()
    assert count == 1 and "load average 7.2 from other work" in why
    monkeypatch.setenv(_threads.ENV, "2")
    assert _threads.choose(None, recorded=5)[0] == 2
    monkeypatch.setenv(_threads.ENV, "many")
    with pytest.raises(UserError, match="GAN_REGISTRY_THREADS must be a whole number"):
        _threads.choose()


def test_the_python_api_runs_a_toy_matrix_with_its_sample_metric_floor(tmp_path):
    import gan_registry as gr

    said = []
    result = gr.matrix("gaussians:layout=grid,count=2000", arch="mlp", objective="gan", steps=3, samples=300,
                       out=tmp_path / "m", workers=1, say=said.append)
    (cell,) = result["cells"]
    assert cell["status"] == "done" and cell["dataset"] == "gaussians:layout=grid,count=2000"
    assert cell["metrics"]["modes_total"] == 25 and "fid" not in cell["metrics"]
    floor = result["floors"]["gaussians:layout=grid,count=2000"]["metrics"]
    assert floor["modes_covered"] == 25 and floor["high_quality_percent"] > 95  # real points hit every mode
    config = json.loads((tmp_path / "m" / cell["run"] / "config.json").read_text())
    assert config["settings"]["params"]["dataset"] == {"layout": "grid", "count": "2000"}  # as -p gives them
    assert any("1 pairs accepted" in line for line in said)


def test_a_cell_that_failed_keeps_what_it_cost_for_its_retry(tmp_path):
    from gan_registry import _matrix

    cell = tmp_path / "cells" / "a-b-c"
    cell.mkdir(parents=True)
    record = cell / _matrix.CELL_RECORD
    _matrix._finish(record, {"status": "failed", "reason": "evaluation exited 1"}, {"cpu": 600.0, "wall": 650.0},
                    time.monotonic())
    assert json.loads(record.read_text())["cpu_minutes"] == 10.0
    kept = json.loads(record.with_suffix(".partial").read_text())
    assert kept["cpu_s"] == 600.0 and kept["wall_s"] >= 650.0  # a retry starts its tally from here
    _matrix._finish(record, {"status": "done"}, {"cpu": 606.0, "wall": 660.0}, time.monotonic())
    assert not record.with_suffix(".partial").exists() and json.loads(record.read_text())["cpu_minutes"] == 10.1
