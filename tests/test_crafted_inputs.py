"""Crafted inputs and faults that need real processes: two writers of one run folder, plugins that exit or pose
as another distribution at import, a stop asked for inside a long inner loop.

Each case crafts the thing for real (a live `gan run`, a distribution's metadata on PYTHONPATH, a signal) and runs
the real `gan` command line; the one-line refusals of plain bad input are in test_refusals.py's table."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import gan_registry

from gan_registry.testing import HANG_S, run_gan

DOCS = Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md"
GAUSSIANS = ["--arch", "mlp", "--objective", "gan", "--dataset", "gaussians"]


def _gan_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gan_registry", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_for(path: Path, process: subprocess.Popen) -> None:
    """Until `path` exists: bounded by the process, which trains far longer than it takes to write it."""
    while not path.exists():
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_live_run_has_one_writer_readers_keep_reading_and_kill_9_leaves_no_stale_lock(tmp_path):
    live = tmp_path / "runs" / "live"
    trainer = _gan_process("run", *GAUSSIANS, "--steps", "1000000", "--sample-every", "20", "--out", live,
                           "--no-progress")
    try:
        _wait_for(live / "checkpoints" / "last.pt", trainer)
        resumed = run_gan("resume", live, "--steps", "2000000")
        assert resumed.returncode == 2
        line = _one_error_line(resumed)
        assert f"{live} is in use" in line and f"pid {trainer.pid}" in line, line
        shown = next(row for row in DOCS.read_text().splitlines() if row.startswith("| training a run another process"))
        assert line.split(f"pid {trainer.pid}")[1].split(")", 1)[1] in shown  # the page shows the real message
        handed = run_gan("resume", live, "--steps", "2000000", "--nproc", "2")  # refused before torchrun starts
        assert handed.returncode == 2 and f"pid {trainer.pid}" in _one_error_line(handed)
        started = run_gan("run", *GAUSSIANS, "--steps", "5", "--out", live)  # a new run there: refused, as before
        assert started.returncode == 2 and "already holds a run" in _one_error_line(started)
        assert run_gan("runs", tmp_path / "runs").returncode == 0
        sampled = run_gan("sample", live, "-n", "16", "-o", tmp_path / "live.png")
        assert sampled.returncode == 0, sampled.stderr
    finally:
        trainer.kill()  # SIGKILL: the kernel drops the lock with the process
        trainer.communicate(timeout=HANG_S)
    step = torch.load(live / "checkpoints" / "last.pt", weights_only=True)["step"]
    resumed = run_gan("resume", live, "--steps", step + 5, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {live} at step {step}" in resumed.stdout


def test_two_runs_started_at_once_into_one_new_folder_one_trains_the_other_is_refused(tmp_path):
    out = tmp_path / "twin"
    args = [*GAUSSIANS, "--steps", "40", "--out", out, "--no-progress"]
    first, second = _gan_process("run", *args), _gan_process("run", *args, "--seed", "9")
    results = [(p.wait(timeout=HANG_S), p.communicate()[1]) for p in (first, second)]
    assert sorted(code for code, _ in results) == [0, 2], results
    refusal = next(err for code, err in results if code == 2)
    assert any(why in refusal for why in ("is in use", "already holds a run", "is not empty")), refusal
    assert "Traceback" not in refusal
    settings = __import__("json").loads((out / "config.json").read_text())["settings"]
    winner = [first, second][[code for code, _ in results].index(0)]
    assert settings["seed"] == (0 if winner is first else 9)  # one writer's run, whole


def test_a_refused_run_leaves_no_folder_and_no_lock(tmp_path):
    digits = ["--arch", "mlp", "--objective", "gan", "--dataset", "digits", "--batch-size", "5000", "--steps", "1"]
    result = run_gan("run", *digits, "--out", tmp_path / "a" / "b")
    assert result.returncode == 2 and "fewer than one batch" in _one_error_line(result)
    assert not (tmp_path / "a").exists()
    diverging = ["--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "--steps", "60", "--log", "tensorboard",
                 "-p", "objective.lr_discriminator=1e30", "-p", "objective.lr_generator=1e30", "--no-progress"]
    result = run_gan("run", *diverging, "--out", tmp_path / "c" / "d")  # its logger wrote before it stopped
    assert result.returncode == 3 and "no checkpoint had been written yet" in result.stderr
    assert not (tmp_path / "c").exists()
    given = tmp_path / "given"
    given.mkdir()
    result = run_gan("run", *digits, "--out", given)
    assert result.returncode == 2 and given.is_dir() and list(given.iterdir()) == []


def _distribution(site: Path, name: str, version: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[gan_registry]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)


IMPOSTOR = '''
import dataclasses, pathlib
from gan_registry import hookimpl
import gan_registry_objectives.gan as real

def _marked(params, *args):
    pathlib.Path({marker!r}).write_text("the impostor ran")
    raise SystemExit("impostor")

@hookimpl
def register_objectives(register):
    found = []
    real.register_objectives(found.append)
    register(dataclasses.replace(found[0], summary="IMPOSTOR", factory=_marked))
'''


def test_a_distribution_whose_name_normalises_to_a_built_ins_cannot_take_it_over(tmp_path):
    site, marker = tmp_path / "site", tmp_path / "IMPOSTOR_RAN"
    _distribution(site, "Gan_Registry.Objectives", "9.9", {"gan": "impostor_objective"},
                  {"impostor_objective": IMPOSTOR.format(marker=str(marker))})
    env = {"PYTHONPATH": str(site)}
    listed = run_gan("list", "objectives", env=env)
    assert listed.returncode == 0
    assert "IMPOSTOR" in listed.stdout and "Original GAN" in listed.stdout  # both, not the impostor alone
    plugins = run_gan("plugins", env=env).stdout
    assert "Gan_Registry.Objectives 9.9" in plugins and "gan-registry-objectives" in plugins
    assert "have one name to pip" in plugins
    for name in ("gan", "gan@gan-registry-objectives", "gan@Gan_Registry.Objectives", "gan@gan"):
        result = run_gan("run", *GAUSSIANS[:2], "--objective", name, "--dataset", "gaussians", "--steps", "2",
                         "--out", tmp_path / "r", env=env)
        assert result.returncode == 2, (name, result.stderr)
        line = _one_error_line(result)
        assert "more than one objective 'gan'" in line or "objective 'gan' is registered by 2 plugins" in line, line
    assert not marker.exists() and not (tmp_path / "r").exists()


def test_an_entry_point_named_like_a_built_in_distribution_cannot_take_its_name(tmp_path):
    site, marker = tmp_path / "site", tmp_path / "IMPOSTOR_RAN"
    _distribution(site, "totally-innocent", "1.0", {"gan-registry-objectives": "impostor_objective"},
                  {"impostor_objective": IMPOSTOR.format(marker=str(marker))})
    _distribution(site, "gan-registry", "9.9", {"spoof": "spoofed_core"},
                  {"spoofed_core": "from gan_registry import hookimpl\n"})
    env = {"PYTHONPATH": str(site)}
    result = run_gan("run", *GAUSSIANS[:2], "--objective", "gan@gan-registry-objectives", "--dataset", "gaussians",
                     "--steps", "2", "--out", tmp_path / "r", env=env)
    assert result.returncode == 2 and "more than one objective 'gan'" in _one_error_line(result)
    assert not marker.exists()
    warned = result.stderr
    assert "plugin 'gan-registry-objectives' (totally-innocent 1.0" in warned and "is named like the distribution" in warned
    assert f"distributions gan-registry {gan_registry.__version__}" in warned  # the core's name, taken by 9.9
    assert "gan-registry 9.9 (at" in warned


EXITS = {
    "exit0": "import sys\nsys.exit(0)\n",
    "exit3": "import sys\nsys.exit(3)\n",
    "interrupt": "raise KeyboardInterrupt\n",
    "core_name": "from gan_registry import hookimpl\n",
    "hook": "from gan_registry import hookimpl\n@hookimpl\ndef register_objectives(register):\n    raise KeyboardInterrupt\n",
}


def test_plugins_that_exit_interrupt_or_pose_as_the_core_at_import_are_broken_plugins(tmp_path):
    site = tmp_path / "site"
    _distribution(site, "evil-exits", "0.1",
                  {"exit0": "evil_exit0", "exit3": "evil_exit3", "interrupt": "evil_interrupt",
                   "gan-registry": "evil_core_name", "core-again": "gan_registry._callbacks", "hook": "evil_hook"},
                  {f"evil_{name}": source for name, source in EXITS.items()})
    env = {"PYTHONPATH": str(site)}
    listed = run_gan("list", "objectives", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "wgan-gp" in listed.stdout
    assert "aborted" not in listed.stderr and "_name2plugin" not in listed.stderr and "{" not in listed.stderr
    warnings = [line for line in listed.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 7 and all(len(line) < 300 for line in warnings), listed.stderr
    plugins = run_gan("plugins", env=env)
    assert plugins.returncode == 0
    for name, error in (("exit0", "sys.exit(0)"), ("exit3", "sys.exit(3)"), ("interrupt", "KeyboardInterrupt"),
                        ("core-again", "already loaded as another plugin"),
                        ("hook", "it raised KeyboardInterrupt while registering its components")):
        assert f"{name}  [evil-exits 0.1]  broken" in plugins.stdout
        assert error in plugins.stdout
    assert "gan-registry  [gan-registry" in plugins.stdout and "gan-registry  [evil-exits 0.1]  empty" in plugins.stdout
    strict = run_gan("list", env={**env, "GAN_REGISTRY_STRICT_PLUGINS": "1"})
    assert strict.returncode == 2 and "Traceback (most recent call last)" in strict.stderr
    assert strict.stderr.strip().splitlines()[-1].startswith("Error: plugin 'exit0' (evil-exits 0.1) failed to load")


def _endless_plugin():
    """A third-party objective whose discriminator phase repeats a billion times a step: no bound of ours applies."""
    import dataclasses
    from types import ModuleType

    from gan_registry import hookimpl
    from gan_registry.testing import isolated_registry, toy_plugin

    toy = isolated_registry(toy_plugin).get("objective", "toy")

    class Endless:
        def __init__(self, params):
            self.inner = toy.factory(params)

        def phases(self, models):
            first, *rest = self.inner.phases(models)
            calls = iter(range(10**9))

            def loss(models, batch):  # SIGTERM from inside the 3rd of a billion steps: no clock decides
                if next(calls) == 2:
                    os.kill(os.getpid(), signal.SIGTERM)
                return first.loss(models, batch)

            return [dataclasses.replace(first, loss=loss, repeats=10**9), *rest]

    plugin = ModuleType("endless")
    plugin.register_objectives = hookimpl(
        lambda register: register(dataclasses.replace(toy, name="endless", factory=Endless, origin=None)))
    return isolated_registry(toy_plugin, plugin)


def test_a_stop_asked_for_inside_a_billion_discriminator_steps_ends_the_step(tmp_path):
    from gan_registry import Run
    from gan_registry.errors import Interrupted

    run = Run.new(arch="toy", objective="endless", dataset="toy", steps=3, batch_size=8, out=tmp_path / "r",
                  registry=_endless_plugin())
    with pytest.raises(Interrupted) as stop:
        run.train()
    assert stop.value.exit_code == 143 and stop.value.step == 1
    state = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 1
    assert state["data"] == {"epoch": 0, "position": 3}  # the step ended after the discriminator step signalled


def test_gan_runs_lists_what_it_can_and_follows_no_link_out(tmp_path):
    runs = tmp_path / "runs"
    made = run_gan("run", *GAUSSIANS, "--steps", "2", "--out", runs / "good", "--no-progress")
    assert made.returncode == 0, made.stderr
    (runs / "bad").mkdir()
    (runs / "bad" / "config.json").write_text('{"settings": ')
    (runs / "to-slash").symlink_to("/")
    listed = run_gan("runs", runs)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    assert f"{runs}/good" in listed.stdout and "unreadable: " in listed.stdout and "to-slash" not in listed.stdout
