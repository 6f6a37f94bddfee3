"""The trainer's side duties, as the callbacks of the core's own plugin: every run has them.

A callback is an object with any of these methods (see `gan_registry.CallbackProtocol`), called by the
trainer in ascending `order`:

- `on_train_start(run)`; `on_train_end(run)` when the loop finished; `teardown(run)` always, errors too;
- `on_log(run, record)`: one log line (step, epoch, the mean of each logged value since the last line,
  images/s), read from the device once for all callbacks;
- `on_epoch_end(run)`, then `on_step_end(run)`, after each generator step;
- `before_save(run)`: before a checkpoint is written; raising keeps the previous checkpoint;
- `on_evaluate(run, record)`: the values `--eval-every` measured (step, epoch, "eval/NAME": value, ...);
- `on_samples(run, tag, path)`: a picture of the fixed noise batch (grid, or scatter for 2D points) was written.

A callback with `state_dict()` and `load_state_dict(state)` has that state (plain data) checkpointed.

Layer: services and duties (docs/architecture.md).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

# torch (~3 s), PIL, tqdm and the engine's modules are imported inside the duties that use them: `gan list` and
# `gan describe` load this module (the core's own plugin), and start without them.
from . import _schedules, _threads
from ._components import EMA_KEY, Callback
from ._loggers import CsvLog, JsonlLog
from .errors import STOP_EXIT_CODES, Diverged, Interrupted
from .hookspecs import hookimpl



class StopSignals:
    """SIGINT or SIGTERM: finish the step, write a checkpoint of it, stop with Interrupted.

    A second SIGINT while stopping aborts at once (KeyboardInterrupt), as users expect of Ctrl-C.
    """

    def __init__(self) -> None:
        self.requested: signal.Signals | None = None
        self.trainer: Any = None
        self._previous: dict[int, Any] = {}

    def on_train_start(self, trainer: Any) -> None:
        self.requested = None
        self.trainer = trainer
        self.says = trainer.world.main  # in a distributed run rank 0 speaks for the job
        self._previous.clear()
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for signum in STOP_EXIT_CODES:
            self._previous[signum] = signal.signal(signum, self._handle)

    def teardown(self, trainer: Any) -> None:
        self.trainer = None
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum)
        if self.trainer is not None:
            self.trainer.stopping = True
        if not getattr(self, "says", True):
            return
        # os.write, not print: a print here can collide with the progress bar's own write to stderr
        os.write(2, f"\n{self.requested.name}: stopping after this step and writing a checkpoint"
                    " (Ctrl-C again to abort)\n".encode())

    def on_step_end(self, trainer: Any) -> None:
        # Every rank of a distributed run stops at the step where any of them got the signal.
        if not trainer.world.any(self.requested is not None) or trainer.finished:
            return  # on the last step the run ends as usual, final grid and checkpoint included
        self.requested = self.requested or signal.SIGTERM
        trainer.flush_log()
        path = trainer.save()
        raise Interrupted(trainer.step, path, self.requested.name, STOP_EXIT_CODES[self.requested])


class NonFiniteGuard:
    """Stops a run whose losses or weights turn NaN or infinite, before they reach a checkpoint.

    Losses are checked where the log reads them anyway, and losses and weights once more before
    each save: no extra host sync per step.
    """

    HINT = ("try a lower learning rate (--lr-scale 0.5), a gradient penalty, or another objective;"
            " `gan resume` would replay the same steps")

    def on_log(self, trainer: Any, record: dict[str, Any]) -> None:
        self._check_values(trainer, {k: v for k, v in record.items() if isinstance(v, float)})
        self._check_weights(trainer)

    def before_save(self, trainer: Any) -> None:
        import torch

        pending = trainer.pending_values()
        if pending:
            self._check_values(trainer, dict(zip(pending, torch.stack(list(pending.values())).tolist())))
        self._check_weights(trainer)

    def _check_values(self, trainer: Any, means: dict[str, float]) -> None:
        if trainer.loss_scaling:
            return  # fp16: a step whose loss overflowed was skipped by its scaler; the weights tell divergence
        bad = {key: value for key, value in means.items() if not math.isfinite(value)}
        if bad:
            self._stop(trainer, ", ".join(f"{key} is {value}" for key, value in bad.items()))

    def _check_weights(self, trainer: Any) -> None:
        import torch

        named = [(f"weights {role}.{name}", t) for role, module in trainer.models.items()
                 for name, t in (*module.named_parameters(), *module.named_buffers()) if t.is_floating_point()]
        # Optimiser state too: Adam's second moment can overflow while the weights still look fine.
        named += [(f"optimizer state {phase.name}.{key}", t) for phase in trainer.phases
                  for state in phase.optimizer.state.values() for key, t in state.items()
                  if isinstance(t, torch.Tensor) and t.is_floating_point()]
        if not named:
            return
        finite = torch.stack([torch.isfinite(t).all() for _, t in named]).tolist()
        bad = [name for (name, _), ok in zip(named, finite) if not ok]
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            self._stop(trainer, f"{bad[0]}{more} are not finite")

    def _stop(self, trainer: Any, what: str) -> None:
        kept = (f"the last good checkpoint (step {trainer.saved_step}) is kept" if trainer.saved_step is not None
                else "no checkpoint had been written yet")
        raise Diverged(f"training diverged by step {trainer.step}: {what}; {kept}; {self.HINT}")


EPOCH_GRIDS = 25
"""At most about this many per-epoch grids and checkpoints in a run (without --sample-every): the headline run on
digits spans 60 five-batch epochs, and a run folder of 60 grids and 60 checkpoint writes says no more than one of
25 (its CPU time barely moved: 600 s before, 601 s after, alone on 2 cores)."""


def epoch_spacing(run: Any) -> int:
    """Every how many epochs the per-epoch duties write: 1 until a run spans more than EPOCH_GRIDS epochs."""
    total = run.total_epochs
    return 1 if total is None else max(1, math.ceil(total / EPOCH_GRIDS))


class SampleGrids:
    """A grid (or scatter) of the generator's output on one fixed noise batch: each epoch (every few in a run of
    more than EPOCH_GRIDS epochs), or every --sample-every steps, and at the end."""

    def on_step_end(self, run: Any) -> None:
        every = run.plan.settings.sample_every
        if every is not None and run.step % every == 0:
            run.write_samples(f"step-{run.step:07d}")

    def on_epoch_end(self, run: Any) -> None:
        if run.plan.settings.sample_every is None and run.epoch % epoch_spacing(run) == 0:
            run.write_samples(f"epoch-{run.epoch:04d}")

    def on_train_end(self, run: Any) -> None:
        run.write_samples(f"final-step-{run.step:07d}")
        try:
            write_animation(run.run_dir / "samples")
        except OSError as error:  # a picture is not worth the final checkpoint, which comes after
            print(f"could not write samples/training.gif: {error}", file=sys.stderr, flush=True)


ANIMATION_FRAMES = 24
"""At most this many grids in samples/training.gif, evenly spaced: a GIF of 64 digits at 32 px is about 65 KB a
frame (noise-like pixels compress little), so a long run's stays under 2 MB."""


def write_animation(samples_dir: Any) -> Any:
    """samples/training.gif: the fixed-noise grids of a run in training order, the final one held longer."""
    from PIL import Image

    grids = sorted(samples_dir.glob("epoch-*.png")) + sorted(samples_dir.glob("step-*.png"))
    final = sorted(samples_dir.glob("final-step-*.png"))[-1:]
    if final and not (grids and grids[-1].name == final[0].name.removeprefix("final-")):
        grids += final  # unless --sample-every already drew the last step
    if len(grids) < 2:
        return None
    if len(grids) > ANIMATION_FRAMES:  # keep the first and the last
        last = len(grids) - 1
        grids = [grids[round(i * last / (ANIMATION_FRAMES - 1))] for i in range(ANIMATION_FRAMES)]
    frames = [Image.open(path).convert("RGB") for path in grids]
    size = frames[-1].size
    frames = [f if f.size == size else f.resize(size) for f in frames]
    path, tmp = samples_dir / "training.gif", samples_dir / ".training.tmp.gif"
    frames[0].save(tmp, save_all=True, append_images=frames[1:], duration=[200] * (len(frames) - 1) + [2000],
                   loop=0, optimize=True)
    tmp.replace(path)
    return path


class Checkpoints:
    """checkpoints/last.pt, written where the grids are (so each grid has its weights) and at the end.

    Each checkpoint also keeps the wall time spent training its weights and the devices that trained them: facts a
    model card states (`gan export -o DIR/`) that no setting records. Time after the last checkpoint of a process
    that stopped is not counted: a resume trains those steps again.
    """

    def __init__(self) -> None:
        self.seconds, self.devices, self._since, self._run = 0.0, [], None, None

    def state_dict(self) -> dict[str, Any]:
        spent = self.seconds + (time.perf_counter() - self._since if self._since is not None else 0.0)
        state = {"wall_seconds": round(spent, 3), "devices": list(self.devices)}
        if self._run is not None:  # real images the discriminator was shown: the objective's phases say how many
            run = self._run
            state["images_seen"] = run.step * run.plan.settings.batch_size * run.real_batches_per_step
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        seconds, devices = state.get("wall_seconds"), state.get("devices")
        self.seconds = float(seconds) if isinstance(seconds, (int, float)) and math.isfinite(seconds) else 0.0
        self.devices = [d for d in devices if isinstance(d, str)] if isinstance(devices, list) else []

    def on_train_start(self, run: Any) -> None:
        self._since, self._run = time.perf_counter(), run
        device = _device_name(run.device, run.world.size)
        if device not in self.devices:
            self.devices.append(device)

    def on_step_end(self, run: Any) -> None:
        every = run.plan.settings.sample_every
        if every is not None and run.step % every == 0:
            run.save()

    def on_epoch_end(self, run: Any) -> None:
        if run.plan.settings.sample_every is None and run.epoch % epoch_spacing(run) == 0:
            run.save()

    def on_train_end(self, run: Any) -> None:
        run.save()


def _device_name(device: Any, processes: int) -> str:
    """'cpu', or 'cuda (NVIDIA H100 80GB HBM3)'; with 'x N' for N processes."""
    import torch  # ~3 s: `gan list` loads this module; a run has it loaded already

    name = str(getattr(device, "type", device))
    if name == "cuda" and torch.cuda.is_available():
        name += f" ({torch.cuda.get_device_name(device)})"
    return name + (f" x {processes}" if processes > 1 else "")


EVAL_SEED_OFFSET = 104_729
FINAL_SEED_OFFSET = 130_363


class Evaluation:
    """`--eval-every N`: the chosen metrics every N steps and at the end; checkpoints/best.pt keeps the best step.

    Its samples come from noise of its own (seeded by the run's seed and the step), drawn with the generator in
    eval mode and every random state left as it was: a run trains exactly as it would without evaluation. The
    number reported when the run ends is measured once more on fresh samples, not on those that chose best.pt.
    """

    def __init__(self) -> None:
        self.best: dict[str, Any] | None = None
        self.protocol: dict[str, Any] | None = None
        """How the last evaluation measured (extractor, its weights, reference), kept for the model card."""

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, **({"protocol": self.protocol} if self.protocol else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")
        self.protocol = state.get("protocol") if isinstance(state.get("protocol"), dict) else None

    def on_train_start(self, run: Any) -> None:
        evaluator = run.plan.evaluator
        evaluator.device = run.device
        if evaluator.extractor is not None:  # trains or loads the extractor and the reference features now
            evaluator.reference_features()

    def on_step_end(self, run: Any) -> None:
        if run.step % run.plan.settings.eval_every == 0 or run.finished:
            self._evaluate(run, "eval", run.plan.settings.seed * 1_000_003 + run.step + EVAL_SEED_OFFSET)

    def on_train_end(self, run: Any) -> None:
        values = self._evaluate(run, "final", run.plan.settings.seed + FINAL_SEED_OFFSET, keep_best=False)
        first = next(iter(values))
        summary = f"{first} {values[first]:.4g} at step {run.step} (fresh samples)"
        if self.best is not None:
            summary += (f"; best {self.best['key']} {self.best['value']:.4g} at step {self.best['step']}"
                        " (checkpoints/best.pt)")
        print(f"evaluation: {summary}", file=sys.stderr, flush=True)

    def _evaluate(self, run: Any, prefix: str, seed: int, keep_best: bool = True) -> dict[str, float]:
        from ._conditioning import seeded_labels
        from .checkpoint import preserved_rng
        from .evaluation import ImageSet
        from .generate import decode, latents

        started = time.perf_counter()
        evaluator, settings, world = run.plan.evaluator, run.plan.settings, run.world
        generator, device, n = run.sampling_generator, run.device, settings.eval_samples
        labels = None if run.class_frequencies is None else seeded_labels(run.class_frequencies, n, seed)
        was_training = generator.training
        with preserved_rng():
            # The noise of all n samples, the same on every rank; each rank generates and extracts its share.
            z, share = latents(run.prior, run.plan.latent_dim, n, seed), world.share(n)
            try:
                generator.eval()
                mine = decode(lambda z, *c: generator(z.to(device), *(t.to(device) for t in c)).cpu(), z[share],
                              None if labels is None else labels[share])
            finally:
                generator.train(was_training)
            samples = world.gather(mine, n)
            fake = ImageSet(mine, run.plan.spec.value_range, f"{n:,} samples (seed {seed})", labels=labels)
            gather = (lambda t: world.gather(t, n)) if world.joined else None
            report = evaluator.measure(fake, samples, run.plan.data, gather=gather)
        values = {key: value for result in report["metrics"].values() for key, value in result.items()
                  if isinstance(value, (int, float)) and not isinstance(value, bool)}
        # Without the samples' seed and the cache's note: a resumed run keeps the same protocol as a straight one.
        self.protocol = {"samples": n, **{k: v for k, v in report["protocol"].items() if k != "generated"}}
        if evaluator.reference is not None and "reference" in self.protocol:
            self.protocol["reference"] = evaluator.reference.describe
        record = {"step": run.step, "epoch": run.epoch, **{f"{prefix}/{k}": v for k, v in values.items()}}
        if keep_best:
            self._keep_best(run, report)
            record["eval/best_step"] = self.best["step"]
        run.evaluated(record, seconds=time.perf_counter() - started)
        return values

    def _keep_best(self, run: Any, report: dict[str, Any]) -> None:
        metric = run.plan.evaluator.metrics[0]
        key, value = next(iter(report["metrics"][metric.name].items()))
        better = self.best is None or (value < self.best["value"] if metric.better == "lower"
                                       else value > self.best["value"])
        if better and math.isfinite(value):
            self.best = {"step": run.step, "metric": metric.name, "key": key, "value": float(value)}
            run.save_as("best.pt")


@dataclass
class AverageParams:
    batchnorm: Literal["track", "copy"] = field(default="track", metadata={"help": (
        "track: the average's BatchNorm statistics are its own, updated by one no-grad pass of fresh noise per "
        "step; copy: the trained generator's, copied each step (measured worse: they belong to other weights)")})
    rampup: float | None = field(default=0.05, metadata={"help": (
        "with --ema-half-life, StyleGAN2's ema_rampup: the half-life is at most this fraction of the images seen so "
        "far, so a short run is not an average of its first, untrained steps (none: off)")})

    def __post_init__(self) -> None:
        if self.rampup is not None and not self.rampup > 0:
            raise ValueError(f"rampup must be > 0 (or none), got {self.rampup}")


AVERAGE_NOISE_OFFSET = 15_485_863


class GeneratorAverage:
    """`--ema DECAY` / `--ema-half-life IMAGES`: an exponential moving average of the generator's weights.

    Updated after every step (a copy until `--ema-start`). It lives among the run's networks, so checkpoints carry
    it, and grids, evaluations, `gan sample` and `gan export` use it. BatchNorm statistics are not averaged: with
    `batchnorm=track` the average keeps its own, from one pass of noise per step (drawn from a generator seeded by
    the step, so training and resuming are unchanged); other buffers are copied.
    """

    def __init__(self, params: AverageParams | None = None) -> None:
        self.params = params or AverageParams()
        self.updated_step: int | None = None

    def decay(self, settings: Any, step: int, span: int | None = None) -> float:
        """The decay after `step` steps: --ema's, or the half-life's (a schedule's value at `step` of `span`),
        ramped up as StyleGAN2 does."""
        if settings.ema_half_life is None:
            return settings.ema_decay()
        half_life = _schedules.value_at(settings.ema_half_life, step, span or 1)
        if self.params.rampup is not None:
            half_life = min(half_life, step * settings.batch_size * self.params.rampup)
        return 0.5 ** (settings.batch_size / max(half_life, 1e-8))

    def on_epoch_end(self, run: Any) -> None:
        # An epoch's end comes before its step's end, and writes a grid and a checkpoint: they need this step's.
        self.on_step_end(run)

    def on_step_end(self, run: Any) -> None:
        import torch

        if self.updated_step == run.step:
            return
        self.updated_step = run.step
        settings = run.plan.settings
        average, generator = run.models[EMA_KEY], run.models["generator"]
        copying = run.step <= settings.ema_start
        weight = 1.0 - self.decay(settings, run.step, run.schedule_span)
        tracking = self.params.batchnorm == "track"
        statistics = {id(b) for m in average.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                      for b in m.buffers()} if tracking else set()
        with torch.no_grad():
            for kept, trained in zip(average.parameters(), generator.parameters()):
                kept.copy_(trained) if copying else kept.lerp_(trained, weight)
            for kept, trained in zip(average.buffers(), generator.buffers()):
                if id(kept) not in statistics:
                    kept.copy_(trained)
            if statistics:
                noise = torch.Generator(device=run.device).manual_seed(
                    (settings.seed * 1_000_003 + run.step + AVERAGE_NOISE_OFFSET) % 2**63)
                was_training = average.training
                average.train()
                # The global batch's noise on every rank, each passing its slice (a synced BatchNorm sees all).
                z = run.prior(settings.batch_size, run.plan.latent_dim, run.device, noise)
                average(run.world.local(z), *map(run.world.local, run.condition(settings.batch_size, noise)))
                average.train(was_training)


PLAIN_INTERVAL_S = 60


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


class Progress:
    """A progress bar on a terminal (step, epoch, images/s, the latest losses and metric), plain log lines elsewhere;
    a finished run ends with one line saying what it left where."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.metric: dict[str, str] = {}
        self.measured: dict[int, tuple[str, float]] = {}
        self.best_step: int | None = None
        self.finished = False

    def on_train_start(self, run: Any) -> None:
        self.finished = False
        self.began, self.first = time.monotonic(), run.step
        self.said = self.began
        if run.progress and sys.stderr.isatty() and shutil.get_terminal_size((0, 0)).columns > 0:
            from tqdm import tqdm

            self.bar = tqdm(total=run.total_steps, initial=run.step, unit="step", dynamic_ncols=True, file=sys.stderr)
        elif run.world.main:
            threads = _threads.chosen()
            print(f"training from step {run.step} to {run.total_steps}"
                  + (f" on {threads['count']} CPU thread{'s' if threads['count'] > 1 else ''}"
                     if threads and run.device.type == "cpu" else "") + "; a line follows the first step",
                  file=sys.stderr, flush=True)

    def on_step_end(self, run: Any) -> None:
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.monotonic()
        # Without a bar, a line after the first step and then at least every minute: a slow start looks hung.
        if run.world.main and (run.step == self.first + 1 or now - self.said >= PLAIN_INTERVAL_S):
            self.said = now
            done = run.step - self.first
            left = (now - self.began) / done * max(0, (run.total_steps or run.step) - run.step)
            print(f"step {run.step}/{run.total_steps}: {done / (now - self.began):.2f} steps/s, about "
                  f"{_duration(left)} left", file=sys.stderr, flush=True)

    def on_log(self, run: Any, record: dict[str, Any]) -> None:
        shown = {k.split("/")[-1]: f"{v:.4g}" for k, v in record.items() if k.startswith("loss/")}
        if self.bar is not None:
            self.bar.set_postfix(epoch=record["epoch"], **shown, img_s=record["images_per_s"], **self.metric,
                                 refresh=False)
        else:
            parts = " ".join(f"{k}={v}" for k, v in shown.items())
            print(f"step {record['step']} epoch {record['epoch']} {parts} images/s={record['images_per_s']}",
                  file=sys.stderr, flush=True)

    def on_evaluate(self, run: Any, record: dict[str, Any]) -> None:
        values = {k.split("/", 1)[-1]: v for k, v in record.items()
                  if k.startswith("eval/") and k != "eval/best_step" and isinstance(v, (int, float))}
        if not values:
            return  # the final measurement has its own summary line
        first = next(iter(values))
        self.measured[record["step"]] = (first, values[first])
        self.best_step = record.get("eval/best_step", self.best_step)
        self.metric = {first: f"{values[first]:.4g}"}
        if self.bar is not None:
            self.bar.set_postfix(**{k: f"{v:.4g}" for k, v in values.items()}, refresh=True)
        else:
            parts = " ".join(f"{k}={v:.4g}" for k, v in values.items())
            print(f"step {record['step']} evaluation {parts}", file=sys.stderr, flush=True)

    def on_train_end(self, run: Any) -> None:
        self.finished = True

    def teardown(self, run: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.finished:  # after every on_train_end: the final grid, checkpoint and logs are written
            print(self.summary(run), file=sys.stderr, flush=True)

    def summary(self, run: Any) -> str:
        """One line: the run folder, its checkpoint, grids and logs, and the best measurement."""
        from .runs import run_contents

        line = f"{run.run_dir} at step {run.step}: {run_contents(run.run_dir)}"
        if self.best_step in self.measured:
            key, value = self.measured[self.best_step]
            line += f"; best {key} {value:.4g} at step {self.best_step}"
        return line


# The order keeps what a run leaves consistent: check values before anything is written, write the log
# line, then the grid, then the checkpoint of that grid, and stop on a signal last.
# In a distributed run the guard and the signal handler run on every rank (all must stop at the same step);
# what writes runs on rank 0 alone.
BUILTIN = (
    ("non-finite-guard", 10, NonFiniteGuard, "stop a run whose losses or weights turn NaN or infinite", True),
    ("progress", 30, Progress, "a progress bar on a terminal, log lines on stderr elsewhere", False),
    ("sample-grids", 40, SampleGrids, "grids of a fixed noise batch each epoch (or --sample-every)", False),
    ("checkpoints", 50, Checkpoints, "checkpoints/last.pt with each grid and at the end", False),
    ("stop-signals", 90, StopSignals, "SIGINT/SIGTERM: checkpoint the step reached and stop", True),
)


@hookimpl
def register_callbacks(register):
    for name, order, cls, summary, every_rank in BUILTIN:
        register(Callback(name=name, summary=summary, factory=lambda params, cls=cls: cls(), always=True, order=order,
                          every_rank=every_rank))
    register(Callback(name="jsonl-log", summary="metrics.jsonl: step, epoch, losses, learning rates, images/s per log line",
                      factory=lambda params: JsonlLog(), always=True, logger=True, order=20))
    register(Callback(name="csv", summary="metrics.csv: the log as a table (a column per value)",
                      factory=lambda params: CsvLog(), logger=True, order=21))
    # After the grid, before the checkpoint of that step: best.pt and last.pt then agree on the best so far.
    register(Callback(name="evaluation", summary="--eval-every: metrics during training, checkpoints/best.pt",
                      factory=lambda params: Evaluation(), order=45, every_rank=True))
    # First at each step's end: grids, evaluations and checkpoints of a step see its average.
    register(Callback(name="generator-ema", summary="--ema/--ema-half-life: a moving average of the generator",
                      params=AverageParams, factory=GeneratorAverage, order=5, every_rank=True))
