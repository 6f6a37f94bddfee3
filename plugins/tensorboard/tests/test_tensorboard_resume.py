"""A resumed run's TensorBoard events: its purge comes after the events it purges, in the order TensorBoard reads."""
from __future__ import annotations

import socket
import time
from types import SimpleNamespace

from gan_registry_tensorboard import TensorBoardLog, TensorBoardParams


def test_a_resume_in_the_killed_process_second_still_sorts_after_it(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    logdir = tmp_path / "tensorboard"
    with SummaryWriter(str(logdir)) as killed:
        for step in (10, 20, 30):
            killed.add_scalar("loss", -1.0, step)
    # The killed process's name, as if from a higher process id in this very second (names sort as text).
    (old,) = logdir.iterdir()
    old.rename(logdir / f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.99999999.0")
    log = TensorBoardLog(TensorBoardParams())
    log.on_train_start(SimpleNamespace(run_dir=tmp_path, step=20))  # resumed from step 20's checkpoint
    log.on_log(None, {"step": 30, "loss": 1.0})
    log.teardown(None)

    board = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    board.Reload()
    assert [(e.step, e.value) for e in board.Scalars("loss")] == [(10, -1.0), (20, -1.0), (30, 1.0)]


def test_a_fresh_run_and_a_name_from_the_future_are_not_waited_for(tmp_path, monkeypatch):
    logdir = tmp_path / "tensorboard"
    logdir.mkdir()
    (logdir / f"events.out.tfevents.{int(time.time()) + 3600:010d}.host.1.0").write_bytes(b"")
    waited = []
    monkeypatch.setattr(time, "sleep", waited.append)
    for step in (0, 20):
        log = TensorBoardLog(TensorBoardParams())
        log.on_train_start(SimpleNamespace(run_dir=tmp_path, step=step, plan=SimpleNamespace(
            settings=SimpleNamespace(as_dict=dict))))
        log.teardown(None)
    assert waited == []
