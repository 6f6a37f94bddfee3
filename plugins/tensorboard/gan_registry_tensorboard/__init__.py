"""`gan run --log tensorboard`: the run's log as TensorBoard event files under RUN_DIR/tensorboard.

Scalars: every value of each log line (losses, learning rates, mean D(real)/D(fake) scores where the objective logs
them, images/s) and of each evaluation (`eval/...`); images: each fixed-noise grid (or 2D scatter) the run draws;
text: the run's settings; histograms of weights and gradients every `histograms_every` steps when asked.
`tensorboard --logdir RUN_DIR` (or a folder of runs) shows them.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_registry import Callback, hookimpl


@dataclass
class TensorBoardParams:
    histograms_every: int = field(default=0, metadata={"help": (
        "histograms of every weight and gradient each N steps (0: off; each costs a device sync, so keep N large)")})
    flush_secs: int = field(default=10, metadata={"help": "seconds between writes of pending events to disk"})

    def __post_init__(self) -> None:
        if self.histograms_every < 0:
            raise ValueError(f"histograms_every must be >= 0, got {self.histograms_every}")
        if self.flush_secs < 1:
            raise ValueError(f"flush_secs must be at least 1, got {self.flush_secs}")


def _scalars(record: dict[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in record.items()
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)}


def _wait_for_a_later_second(logdir: Path) -> None:
    """TensorBoard reads a folder's event files in name order, and a name starts with the second its writer was
    made: a resume within the killed process's second could sort first, its purge before what it purges."""
    stamps = [int(p.name.split(".")[3]) for p in logdir.glob("events.out.tfevents.*")
              if p.name.split(".")[3].isdigit()]
    wait = max(stamps, default=0) + 1 - time.time()
    if 0 < wait <= 1:  # a name further ahead (a clock set back, a crafted name) is not waited for
        time.sleep(wait)


class TensorBoardLog:
    def __init__(self, params: TensorBoardParams) -> None:
        self.params = params
        self.writer: Any = None

    def on_train_start(self, run: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # A resumed run replays the steps after its checkpoint: purge_step makes TensorBoard drop the events the
        # interrupted process had logged for them, so each step appears once. It drops steps >= purge_step, and
        # the checkpoint's own step was logged (and drawn) before the checkpoint was written: keep that one.
        logdir = run.run_dir / "tensorboard"
        if run.step:
            _wait_for_a_later_second(logdir)
        self.writer = SummaryWriter(str(logdir), purge_step=run.step + 1 if run.step else None,
                                    flush_secs=self.params.flush_secs)
        if run.step == 0:
            settings = json.dumps(run.plan.settings.as_dict(), indent=2, default=str)
            self.writer.add_text("settings", f"```\n{settings}\n```", 0)

    def on_log(self, run: Any, record: dict[str, Any]) -> None:
        for key, value in _scalars(record).items():
            self.writer.add_scalar(key, value, record["step"])

    def on_evaluate(self, run: Any, record: dict[str, Any]) -> None:
        self.on_log(run, record)

    def on_samples(self, run: Any, tag: str, path: Any) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(path) as picture:
            pixels = np.asarray(picture.convert("RGB"))
        self.writer.add_image("samples", pixels, run.step, dataformats="HWC")

    def on_step_end(self, run: Any) -> None:
        every = self.params.histograms_every
        if not every or run.step % every:
            return
        for role, module in run.models.items():
            for name, parameter in module.named_parameters():
                self.writer.add_histogram(f"weights/{role}/{name}", parameter.detach(), run.step)
                if parameter.grad is not None:
                    self.writer.add_histogram(f"gradients/{role}/{name}", parameter.grad, run.step)

    def teardown(self, run: Any) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@hookimpl
def register_callbacks(register):
    register(Callback(name="tensorboard", logger=True, params=TensorBoardParams, factory=TensorBoardLog, order=22,
                      summary="TensorBoard event files in RUN_DIR/tensorboard: scalars, sample grids, histograms"))
