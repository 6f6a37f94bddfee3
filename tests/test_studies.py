"""`gan study`: trials of `gan run` searched by Optuna in worker processes sharing a storage; a study killed
mid-trial carries on with every trial counted once; a trial behind the others is pruned; mistakes are refused in one
line before any folder is made; a PostgreSQL storage serves as well as SQLite."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import gan_registry as gr
from gan_registry.testing import HANG_S, invoke_gan, run_gan

STUDY = """\
arch = "mlp"
objective = "gan"
dataset = "gaussians"
steps = {steps}
eval-every = {eval_every}
eval-metric = "mode-coverage"
eval-samples = 500

[params.dataset]
count = 512

[params.metric]
threshold = 30

[study]
target = "{target}"
direction = "maximize"
trials = {trials}
{study}

[search]
{search}
"""
SPACE = """\
"objective.lr_generator" = { low = 1e-4, high = 1e-3, log = true }
"batch-size" = [32, 64]"""


def study_file(where: Path, *, steps: int = 60, eval_every: int = 30, trials: int = 4, target="high_quality_percent",
               study: str = "", search: str = SPACE) -> Path:
    path = where / "s.toml"
    path.write_text(STUDY.format(steps=steps, eval_every=eval_every, trials=trials, target=target, study=study,
                                 search=search))
    return path


def shown(out: Path) -> dict:
    result = invoke_gan("study", "show", out, "--json", "--no-pictures")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_study_in_two_workers_killed_mid_trial_carries_on_and_counts_each_trial_once(tmp_path):
    spec, out = study_file(tmp_path), tmp_path / "st"
    args = [sys.executable, "-m", "gan_registry", "study", "run", str(spec), "--out", str(out), "--workers", "2"]
    with open(tmp_path / "first.log", "w") as said:
        first = subprocess.Popen(args, stdout=said, stderr=said, start_new_session=True)
    deadline = time.monotonic() + HANG_S
    while first.poll() is None and time.monotonic() < deadline:  # a trial with a checkpoint and more to train
        if any(not (run / ".study-trained").exists() for run in
               (p.parent.parent for p in out.glob("trials/*/checkpoints/last.pt"))):
            break
        time.sleep(0.1)
    assert first.poll() is None, (tmp_path / "first.log").read_text()
    os.killpg(first.pid, signal.SIGKILL)  # the study, its workers and their trials' runs, as a power cut would
    first.wait()

    again = run_gan("study", "run", spec, "--out", out, "--workers", "2")
    assert again.returncode == 0, again.stderr
    assert "its worker died; queued again" in again.stderr
    result = shown(out)
    trials = result["trials"]
    assert len({t["number"] for t in trials}) == len(trials)
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    assert len(complete) == 4 and result["complete"] == 4
    died = [t for t in trials if t["state"] == "FAIL"]
    assert died and all(t["reason"] == "its worker died mid-trial" for t in died), [t["reason"] for t in died]
    retried = {t["retries"]: t for t in complete if "retries" in t}
    for dead in died:  # run again with its parameters, in its own folder, from its checkpoint
        retry = retried[dead["number"]]
        assert retry["params"] == dead["params"] and retry["runs"] == dead["runs"]
    resumed = [log.read_text() for log in (out / "logs").glob("*.log")]
    assert any("$ gan resume" in text and "resuming" in text for text in resumed)
    assert {"logs", "study.db", "study.json", "study.toml", "trials"} <= {p.name for p in out.iterdir()}
    for trial in complete:
        run = out / trial["runs"][0]
        assert (run / "config.json").is_file() and (run / "checkpoints" / "last.pt").is_file()
        assert trial["command"].startswith("gan run --arch mlp --objective gan --dataset gaussians")

    best = result["best"]
    assert best["value"] == max(t["value"] for t in complete) and set(best["params"]) == {
        "objective.lr_generator", "batch-size"}
    table = invoke_gan("study", "show", out)
    assert table.exit_code == 0 and f"best: trial {best['number']}" in table.output and best["command"] in table.output
    for picture in ("history.png", "slice.png"):
        assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert gr.Study.open(out).best == best
    exported = invoke_gan("study", "best", out, "--export", tmp_path / "best.safetensors")
    assert exported.exit_code == 0, exported.output
    assert f"trial {best['number']}" in exported.output and (tmp_path / "best.safetensors").stat().st_size > 0


def test_a_trial_behind_the_first_is_pruned_and_not_counted(tmp_path):
    # the same lr twice around one that learns nothing: at the first evaluation it is behind, the median pruner
    # stops it, and the study goes on to its two COMPLETE trials
    first = ('pruner = "median"\nstartup-trials = 1\nfirst = [{ "objective.lr_generator" = 1e-3 }, '
             '{ "objective.lr_generator" = 1e-8 }, { "objective.lr_generator" = 1e-3 }]')
    spec = study_file(tmp_path, steps=30, eval_every=10, trials=2, study=first,
                      search='"objective.lr_generator" = { low = 1e-8, high = 1e-3, log = true }')
    result = run_gan("study", "run", spec, "--out", tmp_path / "st")
    assert result.returncode == 0, result.stderr
    states = {t["number"]: t["state"] for t in shown(tmp_path / "st")["trials"]}
    assert states == {0: "COMPLETE", 1: "PRUNED", 2: "COMPLETE"}
    assert "trial 1: pruned at step 10" in result.stderr


REFUSED = [
    ("an unknown parameter", {"search": '"objective.no_such_param" = [1, 2]'}, "has no parameter 'no_such_param'"),
    ("an unknown flag", {"search": '"batch-sizes" = [32, 64]'}, "is not a `gan run` flag nor a KIND.PARAM"),
    ("an empty range", {"search": '"objective.lr_generator" = { low = 1e-3, high = 1e-4 }'}, "an empty range"),
    ("an unknown sampler", {"study": 'sampler = "annealing"'}, "unknown sampler 'annealing'"),
    ("a value the plan refuses", {"search": '"batch-size" = [32, 1]'}, "--batch-size must be at least 2"),
    ("a target the metric does not log", {"target": "fid"},  # mode coverage measured on real points tells
     "the evaluations log no eval/fid (they log: high_quality_percent, modes_covered, modes_total, reverse_kl)"),
]


@pytest.mark.parametrize("what, change, said", REFUSED, ids=[r[0] for r in REFUSED])
def test_a_mistake_is_refused_in_one_line_before_any_folder_is_made(tmp_path, what, change, said):
    result = invoke_gan("study", "run", study_file(tmp_path, **change), "--out", tmp_path / "st")
    assert result.exit_code == 2 and said in result.output, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert not (tmp_path / "st").exists()


def test_an_unreachable_storage_is_refused_before_any_folder_is_made(tmp_path):
    url = f"postgresql+psycopg2://nobody@127.0.0.1:{_free_port()}/none"
    result = invoke_gan("study", "run", study_file(tmp_path), "--out", tmp_path / "st", "--storage", url)
    assert result.exit_code == 2 and result.output.startswith(f"Error: --storage {url}: cannot open it")
    assert not (tmp_path / "st").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A real PostgreSQL server in a temporary folder, on a free local port, for the test alone."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL's initdb and pg_ctl are not on PATH")
    pytest.importorskip("psycopg2", reason="psycopg2 (the [test] extra's psycopg2-binary) is not installed")
    as_user = []
    if os.getuid() == 0:  # PostgreSQL refuses to run as root
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser to start PostgreSQL as another user")
        as_user = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="gan-pg-"))
    if as_user:
        shutil.chown(folder, "postgres")
    port = _free_port()
    subprocess.run([*as_user, initdb, "-D", str(folder / "db"), "-U", "gan", "--auth=trust", "--no-sync"],
                   check=True, capture_output=True, timeout=120)
    subprocess.run([*as_user, pg_ctl, "-D", str(folder / "db"), "-w", "-l", str(folder / "log"), "-o",
                    f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql+psycopg2://gan@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(folder / "db"), "-m", "immediate", "stop"], capture_output=True,
                       timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_study_on_a_postgresql_storage_keeps_its_trials_there(tmp_path, postgres):
    out = tmp_path / "st"
    result = run_gan("study", "run", study_file(tmp_path, steps=4, eval_every=2, trials=1), "--out", out,
                     "--storage", postgres)
    assert result.returncode == 0, result.stderr
    assert not (out / "study.db").exists()
    assert json.loads((out / "study.json").read_text())["storage"] == postgres
    assert [t["state"] for t in shown(out)["trials"]] == ["COMPLETE"]


def test_a_grid_study_with_seeds_ends_with_every_point_once(tmp_path):
    """The grid's last point told (outside Study.optimize, where Optuna's grid sampler would stop() and raise) and
    every seed of a trial beating for it: the seed study of the Studies page, in small."""
    spec = study_file(tmp_path, steps=20, eval_every=20, trials=2, study='sampler = "grid"\nseeds = 2\npruner = "none"',
                      search='"batch-size" = [32, 64]')
    done = invoke_gan("study", "run", spec, "--out", tmp_path / "st")
    assert done.exit_code == 0, done.output
    result = shown(tmp_path / "st")
    complete = [t for t in result["trials"] if t["state"] == "COMPLETE"]
    assert sorted(t["params"]["batch-size"] for t in complete) == [32, 64]
    assert all(len(t["values"]) == 2 for t in complete) and len(result["trials"]) == 2
