"""Trust and faults: crafted files run no code, exports round-trip, stops and failures never lose work."""
from __future__ import annotations

import json
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gan_registry import _files, checkpoint, export
from gan_registry.cli import cli
from gan_registry.errors import CheckpointError, Diverged, UserError, WriteError
from gan_registry.testing import HANG_S, isolated_registry, run_gan, toy_plugin

DIGITS = ["--arch", "mlp", "--objective", "gan", "--image-size", "8", "--batch-size", "32"]
TOY = ["--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "-p", "dataset.count=512",
       "--batch-size", "64", "-p", "arch.hidden=32"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def train(out: Path, *args) -> Path:
    result = invoke("run", *args, "--out", out, "--no-progress")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("digits") / "run", *DIGITS, "--steps", "12")


class _Payload:
    """What a crafted checkpoint holds: unpickling it runs a command that leaves a file behind."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def crafted_copy(run: Path, into: Path, payload) -> Path:
    import shutil

    shutil.copytree(run, into)
    with open(into / "checkpoints" / "last.pt", "wb") as f:
        pickle.dump(payload, f)
    return into


def test_crafted_checkpoint_is_refused_and_never_runs(digits_run, tmp_path):
    marker = tmp_path / "PWNED"
    evil = crafted_copy(digits_run, tmp_path / "evil", {"format": 2, "x": _Payload(marker)})
    for args in (["sample", evil, "-n", "4", "-o", tmp_path / "x.png"], ["resume", evil, "--steps", "20"],
                 ["eval", evil], ["export", evil, "-o", tmp_path / "m.safetensors"]):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert "refused" in result.output and "posix.system" in result.output and "nothing in it was run" in result.output
        assert result.output.strip().count("\n") == 0
        assert not marker.exists(), f"the payload ran on gan {args[0]}"
    # the same inside torch's own zip format: torch.load(weights_only=True) refuses the global
    torch.save({"format": 2, "x": _Payload(marker)}, evil / "checkpoints" / "last.pt")
    with pytest.raises(CheckpointError, match=r"refused .*posix\.system"):
        checkpoint.load(evil / "checkpoints" / "last.pt")
    assert not marker.exists()


def test_crafted_checkpoint_in_a_real_subprocess(digits_run, tmp_path):
    marker = tmp_path / "PWNED"
    evil = crafted_copy(digits_run, tmp_path / "evil", {"x": _Payload(marker)})
    result = run_gan("sample", evil, "-n", "4", "-o", tmp_path / "x.png")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: refused") and result.stderr.count("\n") == 1
    assert not marker.exists() and not (tmp_path / "x.png").exists()


def test_old_format_checkpoints_get_a_clear_message(tmp_path):
    path = tmp_path / "last.pt"
    torch.save({"format": 1, "rng": {"numpy": np.random.get_state()}}, path)  # what 0.2 wrote
    with pytest.raises(CheckpointError, match=r"refused .*numpy.*gan-registry 0\.2 or older \(checkpoint format 1\)"):
        checkpoint.load(path)


def test_checkpoints_hold_only_plain_data_and_restore_every_rng(tmp_path):
    random.seed(5), np.random.seed(6), torch.manual_seed(7)
    random.gauss(0, 1)  # a cached Gaussian in Python's state
    state = checkpoint.rng_state()
    checkpoint.save_atomic({"rng": state}, tmp_path / "c.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    checkpoint.set_rng_state(checkpoint.load(tmp_path / "c.pt")["rng"])  # weights_only=True inside
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


@pytest.mark.parametrize("case", ["mlp-digits", "aae-mixture-prior"])
def test_export_samples_like_the_run_bit_for_bit(tmp_path, case):
    if case == "mlp-digits":
        run = train(tmp_path / "run", *DIGITS, "--steps", "6")
    else:  # the AAE's prior is a Gaussian mixture of its objective's, not the standard normal
        run = train(tmp_path / "run", "--arch", "aae", "--objective", "aae", "--image-size", "8", "--steps", "4",
                    "--batch-size", "32", "--latent-dim", "2", "-p", "objective.prior=mixture")
    model = tmp_path / "model.safetensors"
    assert invoke("export", run, "-o", model).exit_code == 0
    for seed in (0, 3):
        assert invoke("sample", run, "-n", "20", "--seed", seed, "-o", tmp_path / "run.pt").exit_code == 0
        assert invoke("sample", model, "-n", "20", "--seed", seed, "-o", tmp_path / "file.pt").exit_code == 0
        assert torch.equal(torch.load(tmp_path / "run.pt"), torch.load(tmp_path / "file.pt"))
    assert invoke("sample", model, "-n", "16", "-o", tmp_path / "grid.png").exit_code == 0
    assert (tmp_path / "grid.png").stat().st_size > 0

    from safetensors import safe_open

    with safe_open(str(model), "pt") as f:
        meta = f.metadata()
    generator = json.loads(meta["generator"])
    assert generator["distribution"] == f"gan-registry-{case.split('-')[0]}" and generator["params"]
    assert json.loads(meta["value_range"]) == [-1.0, 1.0] and json.loads(meta["sample_shape"]) == [1, 8, 8]
    assert meta["prior"] == ("objective" if case.startswith("aae") else "standard-normal")
    again = invoke("export", run, "-o", model)
    assert again.exit_code == 2 and "exists; pass --force" in again.output
    assert invoke("export", run, "-o", model, "--force").exit_code == 0


def test_export_names_the_distribution_to_install(digits_run, tmp_path):
    model = tmp_path / "model.safetensors"
    assert invoke("export", digits_run, "-o", model).exit_code == 0
    without_mlp = isolated_registry(toy_plugin)
    with pytest.raises(UserError, match=r"needs the generator 'mlp', which no installed plugin provides; pip "
                                        r"install gan-registry-mlp \(it was exported with gan-registry-mlp \d"):
        export.load(without_mlp, model)


def test_non_finite_loss_stops_with_the_step_and_a_hint(tmp_path):
    """A learning rate of 1e30 overflows the weights within a few steps: the guard names the step and the loss."""
    out = tmp_path / "run"
    result = run_gan("run", *TOY, "--steps", "500", "--log-every", "10", "-p", "objective.lr_generator=1e30",
                     "-p", "objective.lr_discriminator=1e30", "--out", out, "--no-progress")
    assert result.returncode == 3, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert re.match(r"Error: training diverged by step (8|10): loss/discriminator is nan", last), last
    assert "no checkpoint had been written yet" in last and "--lr-scale 0.5" in last and "Traceback" not in result.stderr
    assert not (out / "checkpoints").exists()


def test_divergence_after_a_checkpoint_keeps_it_untouched(tmp_path):
    run = train(tmp_path / "run", *TOY, "--steps", "20", "--log-every", "5")
    last = run / "checkpoints" / "last.pt"
    before = last.read_bytes()
    config = json.loads((run / "config.json").read_text())
    config["settings"]["params"]["objective"] = {"lr_generator": "1e30", "lr_discriminator": "1e30"}
    (run / "config.json").write_text(json.dumps(config))
    result = invoke("resume", run, "--steps", "400", "--no-progress")
    assert result.exit_code == 3, result.output
    assert "the last good checkpoint (step 20) is kept" in result.output
    assert last.read_bytes() == before
    weights = checkpoint.load(last)["models"]
    assert all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point())


def test_guard_refuses_to_save_non_finite_weights(tmp_path):
    """Between two log lines, the check before a save catches what the log has not read yet."""
    from gan_registry._plan import Settings, make_plan
    from gan_registry.training import Trainer

    plan = make_plan(isolated_registry(toy_plugin), Settings(arch="toy", objective="toy", dataset="toy", steps=2,
                                                             batch_size=8, log_every=1000))
    trainer = Trainer(plan, tmp_path, torch.device("cpu"), progress=False)
    trainer.train(max_steps=2)
    good = trainer.checkpoint_path.read_bytes()
    with torch.no_grad():
        next(trainer.models["generator"].parameters()).fill_(float("inf"))
    with pytest.raises(Diverged, match=r"weights generator\.\S+ are not finite; the last good checkpoint \(step 2\)"):
        trainer.save()
    assert trainer.checkpoint_path.read_bytes() == good


def test_sigterm_saves_the_step_reached_and_resumes(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "gan_registry", "run", *TOY, "--steps", "1000000",
                             "--log-every", "25", "--out", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(_logged(out)) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=HANG_S)
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1].startswith("stopped by SIGTERM at step ")
    assert "continue with `gan resume" in stderr and "Traceback" not in stderr
    step = checkpoint.load(out / "checkpoints" / "last.pt")["step"]
    assert step >= 50
    assert _logged(out)[-1] == step, "the steps since the last log line are logged before stopping"
    assert invoke("resume", out, "--steps", step + 5, "--no-progress").exit_code == 0
    assert checkpoint.load(out / "checkpoints" / "last.pt")["step"] == step + 5


def _logged(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_kill_9_at_any_moment_leaves_a_loadable_checkpoint(tmp_path):
    """Twenty times: a forked child trains with a checkpoint every step (keeping 2) and is SIGKILLed at a random
    moment; every checkpoint left loads, and the run goes on from it."""
    from gan_registry.plugins import load_registry
    from gan_registry.runs import plan_for_run
    from gan_registry.training import Trainer

    run = train(tmp_path / "run", *TOY, "--steps", "2", "--sample-every", "1", "--keep", "2", "--log-every", "1")
    registry = load_registry()
    rng = random.Random(0)
    steps = []
    for attempt in range(20):
        plan, _ = plan_for_run(registry, run, steps=10**6)
        state = checkpoint.load(run / "checkpoints" / "last.pt")
        pid = os.fork()
        if pid == 0:  # the child: train until killed
            try:
                # The parent's OpenMP pool did not survive the fork (libgomp hangs in its next parallel region).
                torch.set_num_threads(1)
                trainer = Trainer(plan, run, torch.device("cpu"), progress=False)
                trainer.load_state_dict(state)
                sys.stderr = open(os.devnull, "w")
                trainer.train(max_steps=10**6)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        steps.append(checkpoint.load(run / "checkpoints" / "last.pt")["step"])
        for kept in checkpoint.step_files(run / "checkpoints"):
            checkpoint.load(kept)
        assert len(checkpoint.step_files(run / "checkpoints")) <= 3  # 2 kept, + one being written when killed
    assert steps == sorted(steps) and steps[-1] > 2 + 20, steps


def test_keep_n_checkpoints(tmp_path):
    run = train(tmp_path / "run", *TOY, "--steps", "10", "--sample-every", "2", "--keep", "3")
    kept = checkpoint.step_files(run / "checkpoints")
    assert [p.name for p in kept] == ["step-0000006.pt", "step-0000008.pt", "step-0000010.pt"]
    assert os.path.samefile(kept[-1], run / "checkpoints" / "last.pt")
    assert [checkpoint.load(p)["step"] for p in kept] == [6, 8, 10]
    plain = train(tmp_path / "plain", *TOY, "--steps", "4", "--sample-every", "2")
    assert sorted(p.name for p in (plain / "checkpoints").iterdir()) == ["last.pt"]


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """Checkpoint writes go to /dev/full, where the kernel answers ENOSPC: one line, exit 1, last.pt intact."""
    run = train(tmp_path / "run", *TOY, "--steps", "4")
    last = run / "checkpoints" / "last.pt"
    before = last.read_bytes()

    def full_disk(prefix="", suffix="", dir=None):
        path = Path(dir) / f"{prefix}full{suffix}"
        path.touch()
        return os.open("/dev/full", os.O_WRONLY), str(path)

    monkeypatch.setattr(_files.tempfile, "mkstemp", full_disk)  # where atomic writes make their files
    result = invoke("resume", run, "--steps", "8", "--no-progress")
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"Error: could not write checkpoint {last}: no space left on device; the previous checkpoint is kept")
    assert last.read_bytes() == before
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.pt"], "no temporary file is left behind"
    with pytest.raises(WriteError, match="no space left on device"):
        checkpoint.save_atomic({"step": 1}, tmp_path / "x.pt")


def _image_folder(folder: Path, n: int = 48) -> Path:
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (10, 10), (i * 5, 200 - i * 3, 90)).save(folder / f"{i:03d}.png")
    return folder


STREAMED = ["--arch", "mlp", "--objective", "gan", "--dataset", "folder", "--image-size", "8", "--batch-size", "8",
            "-p", "dataset.in_memory=never", "-p", "arch.hidden=32"]


def test_sigterm_to_the_whole_job_with_dataloader_workers(tmp_path):
    """Schedulers signal every process of a job: the workers must leave the stop to the main process."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "gan_registry", "run", *STREAMED, "--data-dir",
                             str(_image_folder(tmp_path / "images")), "--steps", "1000000", "--log-every", "5",
                             "--out", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 90
    while time.time() < deadline and len(_logged(out)) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        _, stderr = proc.communicate(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate()
        pytest.fail(f"the job did not stop within 60 s of SIGTERM; its stderr:\n{stderr[-3000:]}")
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert checkpoint.load(out / "checkpoints" / "last.pt")["step"] == _logged(out)[-1] >= 10


def test_streamed_data_resumes_bit_exact_mid_epoch(tmp_path):
    """DataLoader workers take their seeds from (seed, epoch), not from the training RNG a resume restores."""
    from gan_registry import Run

    images = _image_folder(tmp_path / "images")
    settings = dict(dataset="folder", data_dir=str(images), image_size=8, batch_size=8, device="cpu",
                    params={"dataset": {"in_memory": "never"}, "arch": {"hidden": 32}})
    straight = Run.new("mlp", "gan", out=tmp_path / "straight", steps=15, **settings).train()
    Run.new("mlp", "gan", out=tmp_path / "split", steps=8, **settings).train()  # 6 batches an epoch: mid-epoch
    split = Run.open(tmp_path / "split").train(steps=15)
    a, b = straight.checkpoint(), split.checkpoint()
    assert all(torch.equal(a["models"][k], b["models"][k]) for k in a["models"])
    assert a["data"] == b["data"] and torch.equal(a["rng"]["torch"], b["rng"]["torch"])
