"""A resumed run's logs (metrics.jsonl, metrics.csv, TensorBoard) hold each step once and only whole lines, however
the process before it died: a torn last line, or lines logged after its last checkpoint."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from gan_registry._loggers import CsvLog, JsonlLog
from gan_registry.testing import HANG_S, invoke_gan

TOY = ["--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "--no-progress", "--log", "csv",
       "--log", "tensorboard"]


def gan(*args) -> None:
    result = invoke_gan(*args)
    assert result.exit_code == 0, result.output


def saved_step(run: Path) -> int:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"]


def jsonl_steps(run: Path) -> list[int]:
    text = (run / "metrics.jsonl").read_text()
    assert text.endswith("\n")
    return [json.loads(line)["step"] for line in text.splitlines()]


def jsonl_steps_loose(run: Path) -> list[int]:
    """The steps of the whole lines (a kill may have torn the last one)."""
    steps = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except ValueError:
            pass
    return steps


def csv_steps(run: Path) -> list[int]:
    text = (run / "metrics.csv").read_text()
    assert text.endswith("\n")
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert all(len(row) == len(header) for row in rows)
    return [int(row[header.index("step")]) for row in rows]


def board_scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag's (step, value)s as TensorBoard shows the run: all its event files read in order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    board.Reload()
    return {tag: [(e.step, e.value) for e in board.Scalars(tag)] for tag in board.Tags()["scalars"]}


def test_resume_drops_a_torn_line_and_the_lines_past_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    gan("run", *TOY, "--steps", "20", "--log-every", "5", "--sample-every", "10", "--out", run)
    assert saved_step(run) == 20
    logged = {name: (run / name).read_bytes() for name in ("metrics.jsonl", "metrics.csv")}
    # What a process killed after its checkpoint leaves: steps 25 and 30 logged, the next line half written.
    with open(run / "metrics.jsonl", "a") as f:
        f.write("".join(json.dumps({"step": s, "loss/generator": -1.0}) + "\n" for s in (25, 30)))
        f.write('{"step": 99, "loss')
    with open(run / "metrics.csv", "a", newline="") as f:
        header = logged["metrics.csv"].decode().splitlines()[0].split(",")
        csv.DictWriter(f, header).writerows({"step": s, "loss/generator": -1.0} for s in (25, 30))
        f.write("35,0,1.5")
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(run / "tensorboard")) as writer:
        for s in (25, 30):
            writer.add_scalar("loss/generator", -1.0, s)

    gan("resume", run, "--steps", "40", "--no-progress")
    for name, before in logged.items():
        assert (run / name).read_bytes().startswith(before), f"{name}: the lines up to step 20 are kept as they were"
    expected = [5, 10, 15, 20, 25, 30, 35, 40]
    assert jsonl_steps(run) == expected
    assert csv_steps(run) == expected
    scalars = board_scalars(run)
    assert [s for s, _ in scalars["loss/generator"]] == expected  # step 20, the checkpoint's, kept too
    assert -1.0 not in [v for _, v in scalars["loss/generator"]]
    assert all(len({s for s, _ in points}) == len(points) for points in scalars.values())


def _killed_between_checkpoints(run: Path) -> int:
    """Train in a subprocess and kill -9 it half way between two checkpoints; the step of its last checkpoint, or
    None where the kill came too late (the machine was slow to let this process look)."""
    stderr = run.with_name(run.name + ".stderr")  # a file, not a pipe: a full pipe would stall the run
    process = subprocess.Popen([sys.executable, "-m", "gan_registry", "run", *TOY, "--steps", "1000000",
                                "--log-every", "2", "--sample-every", "20", "-p", "callback.flush_secs=1",
                                "--out", str(run)], stdout=subprocess.DEVNULL, stderr=stderr.open("w"))
    try:
        # Kill half way between two checkpoints: the last whole line's step in 28..38, 48..58, ...
        while process.poll() is None:
            steps = jsonl_steps_loose(run) if (run / "metrics.jsonl").exists() else []
            if steps and steps[-1] > 20 and steps[-1] % 20 >= 8:
                break
            time.sleep(0.01)
        process.kill()
        process.wait(timeout=HANG_S)
    finally:
        process.kill()
    assert process.returncode == -9, stderr.read_text()[-3000:]
    step = saved_step(run)
    return step if max(jsonl_steps_loose(run)) > step else None


def test_resume_after_a_real_kill_9_logs_each_step_once(tmp_path):
    for attempt in range(3):  # bound by tries, not seconds
        run = tmp_path / f"run{attempt}"
        step = _killed_between_checkpoints(run)
        if step is not None:
            break
    assert step is not None, "three kills all came after a checkpoint and before any line past it"

    gan("resume", run, "--steps", step + 10, "--no-progress")
    expected = list(range(2, step + 11, 2))
    assert jsonl_steps(run) == expected
    assert csv_steps(run) == expected
    for tag, points in board_scalars(run).items():
        steps = [s for s, _ in points]
        assert steps == sorted(set(steps)), tag  # each once, in order (the killed process may not have flushed all)
        assert steps[-1] == step + 10, tag


def fake_run(tmp_path: Path, step: int) -> SimpleNamespace:
    return SimpleNamespace(run_dir=tmp_path, step=step)


def test_only_a_resume_repairs_and_it_keeps_lines_it_cannot_judge(tmp_path):
    path = tmp_path / "metrics.jsonl"
    deep = "[" * 100_000 + "]" * 100_000  # json's parser gives up (RecursionError): a corrupt line, not a traceback
    kept = [json.dumps({"step": 5}), deep, json.dumps({"note": "no step"}), json.dumps({"step": "7"}),
            json.dumps({"step": 10, "eval/fid": 3.0})]
    text = "\n".join([*kept, json.dumps({"step": 15}), deep]) + "\n"
    path.write_text(text)
    JsonlLog().on_train_start(fake_run(tmp_path, 0))  # a fresh run leaves the folder's file alone
    assert path.read_text() == text
    JsonlLog().on_train_start(fake_run(tmp_path, 10))  # the last line does not parse: torn
    assert path.read_text() == "\n".join(kept) + "\n"
    assert not list(tmp_path.glob(".*.tmp"))


def test_appending_never_glues_two_lines(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 5}\n{"step": 99, "loss')
    JsonlLog().on_log(fake_run(tmp_path, 10), {"step": 10})
    assert (tmp_path / "metrics.jsonl").read_text().splitlines()[-1] == '{"step": 10}'
    (tmp_path / "metrics.csv").write_text("step,loss\r\n5,1.0\r\n99,0.")
    CsvLog().on_log(fake_run(tmp_path, 10), {"step": 10, "loss": 2.0})
    assert (tmp_path / "metrics.csv").read_text().splitlines()[-1] == "10,2.0"


def test_a_resume_cuts_a_csv_back_by_rows_not_lines(tmp_path):
    path = tmp_path / "metrics.csv"
    kept = 'step,note\r\n5,"two\r\nlines"\r\n10,\r\n'
    path.write_bytes((kept + '15,x\r\n20,"torn\r\nopen').encode())
    CsvLog().on_train_start(fake_run(tmp_path, 10))
    assert path.read_bytes() == kept.encode()
