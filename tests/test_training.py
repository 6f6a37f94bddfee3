"""End-to-end training through the real `gan` command: runs, samples, exact resume, interruption."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from gan_registry import checkpoint
from gan_registry.errors import CheckpointError, WriteError
from gan_registry.testing import HANG_S, invoke_gan, run_gan

TOY = ["--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "-p", "dataset.count=2048",
       "--device", "cpu", "--no-progress"]


def _models(run_dir):
    return checkpoint.load(run_dir / "checkpoints" / "last.pt")["models"]


def test_gaussians_run_writes_run_directory_and_samples(tmp_path):
    out = tmp_path / "run"
    result = run_gan("run", *TOY, "--steps", "120", "--log-every", "40", "--sample-every", "60", "--out", out)
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["components"]["generator"]["distribution"] == "gan-registry-mlp"
    assert config["components"]["dataset"]["params"]["count"] == 2048
    assert config["sample_shape"] == [2] and config["value_range"] is None
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [40, 80, 120]
    assert all(r["images_per_s"] > 0 and np.isfinite(r["loss/discriminator"]) for r in records)
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "final-step-0000120.png", "step-0000060.png", "step-0000120.png", "training.gif"]
    assert "step 120 epoch" in result.stderr  # plain log lines when stderr is not a terminal

    for name in ("s.npy", "s.pt", "s.png"):  # in-process: the run above is the real subprocess
        result = invoke_gan("sample", out, "-n", "300", "--seed", "1", "-o", tmp_path / name)
        assert result.exit_code == 0, result.output
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (300, 2) and np.isfinite(samples).all()
    assert torch.equal(torch.load(tmp_path / "s.pt"), torch.from_numpy(samples))
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_long_run_spaces_its_epoch_grids_and_checkpoints(tmp_path):
    # 60 epochs of two batches: a grid and a checkpoint every third epoch (at most EPOCH_GRIDS), and the last step
    out = tmp_path / "run"
    result = run_gan("run", "--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "-p",
                     "dataset.count=512", "--batch-size", "256", "--epochs", "60", "--keep", "100", "--out", out,
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    grids = sorted(p.name for p in (out / "samples").glob("epoch-*.png"))
    assert grids == [f"epoch-{e:04d}.png" for e in range(3, 61, 3)]
    kept = sorted(p.name for p in (out / "checkpoints").glob("step-*.pt"))
    assert kept == [f"step-{2 * e:07d}.pt" for e in range(3, 61, 3)]


def test_digits_run_writes_image_grids_each_epoch(tmp_path):
    from PIL import Image

    out = tmp_path / "run"
    result = run_gan("run", "--arch", "mlp", "--objective", "gan", "--epochs", "2", "--batch-size", "128",
                     "--image-size", "16", "--out", out, "--no-progress")
    assert result.returncode == 0, result.stderr
    grids = sorted(p.name for p in (out / "samples").iterdir())
    assert grids[:2] == ["epoch-0001.png", "epoch-0002.png"]
    image = Image.open(out / "samples" / "epoch-0002.png")
    assert image.size == (8 * 18 + 2, 8 * 18 + 2)  # 64 samples of 16 px, 2 px padding
    sample = invoke_gan("sample", out, "-n", "5", "-o", tmp_path / "d.npy")
    assert sample.exit_code == 0, sample.output
    values = np.load(tmp_path / "d.npy")
    assert values.shape == (5, 1, 16, 16) and values.min() >= -1 and values.max() <= 1


def test_resume_is_bit_exact(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    base = ["--arch", "mlp", "--objective", "gan", "--device", "cpu", "--no-progress", "--batch-size", "32",
            "--image-size", "8"]
    args = [*base, "--seed", "5"]
    assert invoke_gan("run", *args, "--steps", "80", "--out", straight).exit_code == 0
    assert invoke_gan("run", *args, "--steps", "40", "--out", split).exit_code == 0
    resumed = run_gan("resume", split, "--steps", "80", "--no-progress")  # a fresh process restores every state
    assert resumed.returncode == 0, resumed.stderr
    a, b = checkpoint.load(straight / "checkpoints/last.pt"), checkpoint.load(split / "checkpoints/last.pt")
    assert a["step"] == b["step"] == 80 and a["data"] == b["data"]
    assert a["models"].keys() == b["models"].keys()
    for key in a["models"]:
        assert torch.equal(a["models"][key], b["models"][key]), key
    for phase in a["optimizers"]:
        for index, state in a["optimizers"][phase]["state"].items():
            for name, value in state.items():
                assert torch.equal(value, b["optimizers"][phase]["state"][index][name])
    # the 40 steps are not exact by luck: a different seed gives different weights
    assert invoke_gan("run", *base, "--seed", "6", "--steps", "80", "--out", tmp_path / "other").exit_code == 0
    other = _models(tmp_path / "other")
    assert not torch.equal(other["generator.net.0.weight"], a["models"]["generator.net.0.weight"])


def test_resume_refuses_when_already_at_total(tmp_path):
    out = tmp_path / "run"
    assert invoke_gan("run", *TOY, "--steps", "5", "--out", out).exit_code == 0
    result = run_gan("resume", out)  # the real exit path; the second refusal runs in-process
    assert result.returncode == 2
    assert "already at step 5; ask for more with --steps N" in result.stderr
    again = invoke_gan("run", *TOY, "--steps", "5", "--out", out)
    assert again.exit_code == 2 and "already holds a run" in again.output


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_checkpoint_is_a_clear_error(tmp_path, damage):
    out = tmp_path / "run"
    assert invoke_gan("run", *TOY, "--steps", "5", "--out", out).exit_code == 0
    path = out / "checkpoints" / "last.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a checkpoint at all")
    resumed = run_gan("resume", out, "--steps", "10")  # the real exit path; sample's runs in-process
    sampled = invoke_gan("sample", out, "-o", tmp_path / "x.png")
    for code, message in ((resumed.returncode, resumed.stderr), (sampled.exit_code, sampled.output)):
        assert code == 2
        assert message.startswith(f"Error: checkpoint {path} is corrupt or truncated") and (
            message.count("\n") == 1), message


class _FailsHalfway:
    """Pickling this raises after the bytes before it were written: a write broken mid-file."""

    def __reduce__(self):
        raise OSError("disk full (simulated by a real failure inside torch.save)")


def test_interrupted_checkpoint_write_keeps_previous_file(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.save_atomic({"step": 1, "weights": torch.arange(10)}, path)
    with pytest.raises(WriteError, match="disk full.*the previous checkpoint is kept"):
        checkpoint.save_atomic({"step": 2, "weights": torch.zeros(100_000), "tail": _FailsHalfway()}, path)
    assert checkpoint.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"], "no temporary file is left behind"


def test_killed_writer_never_leaves_a_broken_checkpoint(tmp_path):
    """SIGKILL a process that rewrites a large checkpoint in a loop: last.pt always loads."""
    path = tmp_path / "last.pt"
    writer = (
        "import sys, torch\nfrom gan_registry import checkpoint\n"
        "big = torch.randn(4_000_000)\ni = 0\n"
        "while True:\n    i += 1\n    checkpoint.save_atomic({'step': i, 'w': big}, sys.argv[1])\n"
        "    print(i, flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(3):
            proc.stdout.readline()
        time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    assert checkpoint.load(path)["step"] >= 3


def interrupt_after_first_log(run_args: list[str], out) -> str:
    """Start `gan run`, press Ctrl-C once it has logged, and return its stderr (it must exit 130)."""
    proc = subprocess.Popen([sys.executable, "-m", "gan_registry", "run", *run_args, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (out / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=HANG_S)
    assert proc.returncode == 130, stderr
    return stderr


def test_ctrl_c_writes_checkpoint_exits_130_and_resumes(tmp_path):
    out = tmp_path / "run"
    stderr = interrupt_after_first_log([*TOY, "--steps", "1000000", "--log-every", "20"], out)
    assert "continue with `gan resume" in stderr and "Traceback" not in stderr
    state = checkpoint.load(out / "checkpoints" / "last.pt")
    assert state["step"] >= 20
    resumed = run_gan("resume", out, "--steps", str(state["step"] + 10), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert checkpoint.load(out / "checkpoints" / "last.pt")["step"] == state["step"] + 10


def test_checkpoint_load_rejects_foreign_files(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"hello": 1}, path)
    with pytest.raises(CheckpointError, match="not a gan-registry checkpoint"):
        checkpoint.load(path)


def test_lr_factor_holds_then_falls_linearly():
    from gan_registry.training import lr_factor

    assert [lr_factor(step, 10, None) for step in range(10)] == [1.0] * 10
    assert [lr_factor(step, 10, 0.6) for step in range(10)] == [1, 1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25]
    assert lr_factor(9, 10, 0.0) == pytest.approx(0.1) and lr_factor(0, 10, 1.0) == 1.0


def test_decaying_run_resumes_bit_exact_after_ctrl_c(tmp_path):
    """The rates follow the step, so a run stopped anywhere and resumed ends as if never stopped."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    args = [*TOY, "--batch-size", "32", "--steps", "600", "--lr-decay-start", "0.5", "--log-every", "10"]
    interrupt_after_first_log(args, split)
    stopped_at = checkpoint.load(split / "checkpoints" / "last.pt")["step"]
    assert 0 < stopped_at < 600
    assert run_gan("resume", split, "--no-progress").returncode == 0
    assert run_gan("run", *args, "--out", straight).returncode == 0
    a, b = checkpoint.load(straight / "checkpoints/last.pt"), checkpoint.load(split / "checkpoints/last.pt")
    for key in a["models"]:
        assert torch.equal(a["models"][key], b["models"][key]), key
    last = json.loads((straight / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 600 and last["lr_multiplier"] == pytest.approx(10 / 300, rel=1e-5)
    # the last step trained at 1/300 of the starting rate: gan's 2e-4 times the lr_scale 10 gaussians suggests
    for phase in ("discriminator", "generator"):
        assert a["optimizers"][phase]["param_groups"][0]["lr"] == pytest.approx(2e-3 / 300)
