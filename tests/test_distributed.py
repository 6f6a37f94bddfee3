"""Data-parallel training: real 2-process torchrun jobs over gloo on 127.0.0.1, compared with 1-process twins."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import gan_registry as gr
from gan_registry import _distributed
from gan_registry.testing import HANG_S

WORKER = Path(__file__).with_name("distributed_worker.py")
POINTS = {"arch": "mlp", "objective": "gan", "dataset": "gaussians", "batch_size": 64, "seed": 3,
          "log_every": 5, "device": "cpu"}
NO_BN = {"generator": {"norm": "none"}}
BN = {"generator": {"norm": "batch"}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
            "--master-addr", "127.0.0.1", "--master-port", str(free_port()), *args]


def job(tmp_path: Path, name: str, *, nproc: int = 2, new: dict | None = None, resume: dict | None = None,
        out: Path | None = None) -> list[dict]:
    """Run the worker as an `nproc`-process job; each rank's networks, step and optimiser state."""
    out = out or tmp_path / name
    dump = tmp_path / f"{name}-dump"
    dump.mkdir()
    spec = {"out": str(out), "dump": str(dump), **({"new": new} if new is not None else {"resume": resume})}
    done = subprocess.run(torchrun(str(WORKER), json.dumps(spec), nproc=nproc), capture_output=True, text=True,
                          timeout=HANG_S)
    assert done.returncode == 0, done.stderr[-3000:]
    return [torch.load(dump / f"rank-{r}.pt", weights_only=True) for r in range(nproc)]


def one_process(out: Path, **settings) -> dict:
    run = gr.Run.new(**settings, out=out)
    run.train()
    return {"models": run._trainer.models.state_dict(), "step": run._trainer.step}


def outputs(run_dir: Path) -> list[float]:
    """The checkpointed generator on fixed noise, in training mode (BatchNorm on the batch's own statistics)."""
    generator = gr.Run.open(run_dir).networks()["generator"].train()
    with torch.no_grad():
        return generator(torch.randn(256, 2, generator=torch.Generator().manual_seed(0))).flatten().tolist()


def worst_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max() / (b[k].double().abs().max() + 1e-8))
               for k in a if a[k].is_floating_point())


def assert_ranks_identical(ranks: list[dict]) -> None:
    first = ranks[0]
    for other in ranks[1:]:
        for key, value in first["models"].items():
            assert torch.equal(value, other["models"][key]), f"{key} differs between ranks"
        for phase, state in first["optimizers"].items():
            for index, slots in state.items():
                for slot, value in slots.items():
                    assert torch.equal(value, other["optimizers"][phase][index][slot]), f"{phase} {slot} differs"


def test_two_processes_compute_what_one_does_and_only_rank_0_writes(tmp_path):
    # WGAN-GP: a double backward through the all-reduced gradients, its interpolation weights the global batch's;
    # evaluation every 3 steps on 501 samples, split 250/251 over the ranks and gathered into the same set.
    # Six steps: the twins differ by float rounding alone (a sum over 64 rows against two sums over 32, 6e-7 on an
    # AVX-512 CPU), and WGAN-GP's early steps amplify that ten-thousandfold between steps 5 and 10 there. The
    # paper's 1e-4 (x10 on the toys), not the default 2e-4: the amplification grows with the rate (4.6e-4 at 2e-4).
    paper_rates = {**NO_BN, "objective": {"lr_critic": 1e-4, "lr_generator": 1e-4}}
    settings = {**POINTS, "objective": "wgan-gp", "steps": 6, "log_every": 2, "params": paper_rates, "ema": 0.9,
                "eval_every": 3, "eval_samples": 501, "eval_metrics": ["mode-coverage"]}
    ranks = job(tmp_path, "two", new=settings)
    assert_ranks_identical(ranks)  # gradients, optimiser moments and the generator average alike
    twin = one_process(tmp_path / "one", **settings)
    assert ranks[0]["step"] == twin["step"] == 6
    assert worst_difference(ranks[0]["models"], twin["models"]) < 1e-4
    # what a 1-process run writes, written once (the worker fails the job if rank 1 writes into the folder)
    two, one = tmp_path / "two", tmp_path / "one"
    assert sorted(p.relative_to(two).as_posix() for p in two.rglob("*")) == \
        sorted(p.relative_to(one).as_posix() for p in one.rglob("*"))
    logged = [json.loads(line) for line in (two / "metrics.jsonl").read_text().splitlines()]
    expected = [json.loads(line) for line in (one / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [r["step"] for r in expected]
    assert [r["step"] for r in logged if "loss/critic" in r] == [2, 4, 6]
    evaluated = 0
    for got, want in zip(logged, expected):  # the log's numbers are the global batch's, not rank 0's share
        assert got.keys() == want.keys()
        for key in [k for k in want if k.startswith(("loss/", "critic/", "eval/"))]:
            near = 1e-3 if key.startswith("eval/") else 1e-5
            assert got[key] == pytest.approx(want[key], rel=1e-3, abs=near), (got["step"], key)
            evaluated += key.startswith("eval/")
        if "critic/gp" in got:
            assert got["critic/gp"] > 0
    assert evaluated >= 2
    config = json.loads((two / "config.json").read_text())
    assert config["processes"] == [{"from_step": 0, "world_size": 2, "backend": "gloo"}]
    assert "world_size" not in config["settings"]


def test_batchnorm_is_synchronised(tmp_path):
    # BatchNorm of the global batch: the 2-process generator is the 1-process one, running statistics included
    bn = {**POINTS, "steps": 12, "params": BN}
    ranks = job(tmp_path, "bn", new=bn)
    assert_ranks_identical(ranks)
    twin = one_process(tmp_path / "bn-one", **bn)
    # Compared as functions: a bias just before a BatchNorm has no true gradient, and Adam turns the rounding
    # noise of its zero into full steps of either sign, which the BatchNorm then takes off again.
    assert outputs(tmp_path / "bn") == pytest.approx(outputs(tmp_path / "bn-one"), rel=1e-3, abs=1e-4)
    judge = {k: v for k, v in ranks[0]["models"].items() if k.startswith("discriminator.")}
    assert worst_difference(judge, {k: twin["models"][k] for k in judge}) < 1e-3


def test_resume_across_world_sizes(tmp_path):
    settings = {**POINTS, "steps": 10, "params": NO_BN}
    one_process(tmp_path / "reference", **settings)  # 1 process to 10, resumed by 1 process to 20
    reference = gr.Run.open(tmp_path / "reference")
    reference.train(steps=20)  # (a resume, not a 20-step run: the learning-rate decay follows the total)
    straight = {"models": reference._trainer.models.state_dict()}
    job(tmp_path, "two-then-one", new=settings)  # 2 processes to step 10 ...
    resumed = gr.Run.open(tmp_path / "two-then-one")
    resumed.train(steps=20)  # ... then 1 process to 20
    assert worst_difference(resumed._trainer.models.state_dict(), straight["models"]) < 1e-4
    processes = json.loads((tmp_path / "two-then-one" / "config.json").read_text())["processes"]
    assert processes == [{"from_step": 0, "world_size": 2, "backend": "gloo"},
                         {"from_step": 10, "world_size": 1, "backend": None}]
    one_process(tmp_path / "one-then-two", **settings)  # and the other way round, after a kill -9 mid-write:
    leftover = tmp_path / "one-then-two" / "checkpoints" / ".last.pt.tmp"
    leftover.write_bytes(b"half a checkpoint")  # rank 0 removes it (rank 1 touching it fails the job)
    ranks = job(tmp_path, "one-then-two-dump", resume={"steps": 20}, out=tmp_path / "one-then-two")
    assert_ranks_identical(ranks)
    assert ranks[0]["step"] == 20
    assert not leftover.exists()
    assert worst_difference(ranks[0]["models"], straight["models"]) < 1e-4


def test_sigterm_saves_from_rank_0_and_a_dead_rank_brings_the_job_down(tmp_path):
    out = tmp_path / "stopped"
    command = torchrun("-m", "gan_registry", "run", "--arch", "mlp", "--objective", "gan", "--dataset", "gaussians",
                       "--steps", "100000", "--log-every", "5", "--device", "cpu", "--out", str(out), "--no-progress")
    for how in ("sigterm", "kill-rank-1"):
        if how == "kill-rank-1":
            out = tmp_path / "killed"
            command[command.index("--out") + 1] = str(out)
        job_process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       start_new_session=True)
        log = out / "metrics.jsonl"
        deadline = time.monotonic() + 120
        while not (log.exists() and log.read_text().count("\n") >= 2) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert log.exists(), job_process.communicate()[1][-2000:]
        if how == "sigterm":
            job_process.send_signal(signal.SIGTERM)  # as a scheduler stops the job: torchrun passes it on
        else:
            workers = [int(p) for p in Path(f"/proc/{job_process.pid}/task/{job_process.pid}/children").read_text().split()]
            rank_1 = next(p for p in workers if b"RANK=1\x00" in Path(f"/proc/{p}/environ").read_bytes())
            os.kill(rank_1, signal.SIGKILL)
        _, stderr = job_process.communicate(timeout=HANG_S)
        assert job_process.returncode != 0
        if how == "sigterm":
            assert "stopped by SIGTERM at step" in stderr, stderr[-2000:]
            step = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"]
            assert step > 0
            resumed = gr.Run.open(out)
            resumed.train(steps=step + 5)
            assert resumed.step == step + 5
        else:
            assert "another process of the 2-process job stopped" in stderr, stderr[-3000:]


def test_gan_run_nproc_hands_over_to_torchrun(tmp_path):
    out = tmp_path / "shortcut"
    done = subprocess.run(["gan", "run", "--nproc", "2", "--arch", "mlp", "--objective", "gan", "--dataset",
                           "gaussians", "--steps", "6", "--log-every", "3", "--device", "cpu", "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, timeout=HANG_S)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("done: ") == 1
    assert json.loads((out / "config.json").read_text())["processes"][0]["world_size"] == 2
    # under torchrun itself every rank finds the mistake; rank 0 alone says it
    refused = subprocess.run(torchrun("-m", "gan_registry", "run", "--arch", "mlp", "--objective", "gan", "--dataset",
                                      "gaussians", "--batch-size", "63", "--device", "cpu",
                                      "--out", str(tmp_path / "odd")), capture_output=True, text=True, timeout=HANG_S)
    assert refused.returncode != 0
    assert refused.stderr.count("Error: --batch-size 63 is the global batch") == 1, refused.stderr[-3000:]
    assert not (tmp_path / "odd").exists()


SPLIT = ["run", "--nproc", "2", "--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "--device", "cpu"]


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "63"], "--batch-size 63 is the global batch and must split evenly over the 2 processes; "
                             "give a multiple of 2 (resuming: a number of processes dividing 63)"),
    (["--batch-size", "2", "--no-sync-bn", "-p", "generator.norm=batch"],
     "--no-sync-bn: each of the 2 processes would normalise a batch of 1, which BatchNorm cannot; drop --no-sync-bn"
     " or raise --batch-size"),
])
def test_gan_run_nproc_finds_mistakes_before_any_process_starts(tmp_path, args, message):
    from click.testing import CliRunner

    from gan_registry.cli import cli

    result = CliRunner().invoke(cli, [*SPLIT, *args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"Error: {message}"]
    assert not (tmp_path / "run").exists()


def test_world_shares_and_synced_batchnorm_state_dict():
    shares = [_distributed.World(rank, 3).share(10) for rank in range(3)]
    assert [(s.start, s.stop) for s in shares] == [(0, 3), (3, 6), (6, 10)]
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4))
    before = net.state_dict()
    _distributed.synchronise_batchnorm(net)
    assert isinstance(net[1], _distributed.SyncedBatchNorm)
    assert net.state_dict().keys() == before.keys()
    x = torch.randn(8, 2)
    plain = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4))
    plain.load_state_dict(before)
    assert torch.allclose(net(x), plain(x))  # outside a process group it is a BatchNorm
