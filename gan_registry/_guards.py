"""Side duties the training loop calls at fixed points: stopping on signals, refusing non-finite values.

Each duty is a small object with any of these methods, called by the trainer:

- `on_train_start(trainer)` / `on_train_end(trainer)`: around the loop (the end runs on errors too);
- `on_step_end(trainer)`: after each generator step;
- `on_log(trainer, means)`: with the mean of each logged value since the last log line (one host sync
  already paid for by the log);
- `before_save(trainer)`: before a checkpoint is written; raising keeps the previous checkpoint.
"""
from __future__ import annotations

import math
import signal
import sys
import threading
from typing import Any

import torch

from .errors import Diverged, Interrupted

STOP_SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 143}
"""Exit codes follow the shell's 128 + signal number; SIGTERM is what schedulers send before a kill."""


class StopSignals:
    """SIGINT or SIGTERM: finish the step, write a checkpoint of it, stop with Interrupted.

    A second SIGINT while stopping aborts at once (KeyboardInterrupt), as users expect of Ctrl-C.
    """

    def __init__(self) -> None:
        self.requested: signal.Signals | None = None
        self._previous: dict[int, Any] = {}

    def on_train_start(self, trainer: Any) -> None:
        self.requested = None
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def on_train_end(self, trainer: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum)
        print(f"\n{self.requested.name}: stopping after this step and writing a checkpoint"
              " (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    def on_step_end(self, trainer: Any) -> None:
        if self.requested is None:
            return
        trainer.flush_log()
        path = trainer.save()
        raise Interrupted(trainer.step, path, self.requested.name, STOP_SIGNALS[self.requested])


class NonFiniteGuard:
    """Stops a run whose losses or weights turn NaN or infinite, before they reach a checkpoint.

    Losses are checked where the log reads them anyway, and losses and weights once more before
    each save: no extra host sync per step.
    """

    HINT = ("try a lower learning rate (--lr-scale 0.5), a gradient penalty, or another objective;"
            " `gan resume` would replay the same steps")

    def on_log(self, trainer: Any, means: dict[str, float]) -> None:
        self._check_values(trainer, means)
        self._check_weights(trainer)

    def before_save(self, trainer: Any) -> None:
        pending = trainer.pending_values()
        if pending:
            self._check_values(trainer, dict(zip(pending, torch.stack(list(pending.values())).tolist())))
        self._check_weights(trainer)

    def _check_values(self, trainer: Any, means: dict[str, float]) -> None:
        bad = {key: value for key, value in means.items() if not math.isfinite(value)}
        if bad:
            self._stop(trainer, ", ".join(f"{key} is {value}" for key, value in bad.items()))

    def _check_weights(self, trainer: Any) -> None:
        named = [(f"{role}.{name}", t) for role, module in trainer.models.items()
                 for name, t in (*module.named_parameters(), *module.named_buffers()) if t.is_floating_point()]
        if not named:
            return
        finite = torch.stack([torch.isfinite(t).all() for _, t in named]).tolist()
        bad = [name for (name, _), ok in zip(named, finite) if not ok]
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            self._stop(trainer, f"weights {bad[0]}{more} are not finite")

    def _stop(self, trainer: Any, what: str) -> None:
        kept = (f"the last good checkpoint (step {trainer.saved_step}) is kept" if trainer.saved_step is not None
                else "no checkpoint had been written yet")
        raise Diverged(f"training diverged by step {trainer.step}: {what}; {kept}; {self.HINT}")


def default_duties() -> list[Any]:
    return [StopSignals(), NonFiniteGuard()]
