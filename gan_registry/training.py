"""The one training loop: every objective runs through it as a list of phases.

Layer: engine (docs/architecture.md).
"""
from __future__ import annotations

import math
import os
from collections import Counter
import random
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import _conditioning, _distributed, _schedules, _speed, checkpoint, render
from ._components import Batch, latent_sampler
from ._plan import EMA_KEY, Plan
from .data import Batches
from .errors import LostProcess, PluginFailure, RunStopped, UserError
from .plugins import blame

FIXED_NOISE_SEED_OFFSET = 7919


StepBatch = Batch  # the name before it was public


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(name, False):
        raise UserError(f"device '{name}' is not available here (use --device auto or cpu)")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_factor(step: int, total: int, decay_start: float | None) -> float:
    """Learning-rate multiplier for generator step `step` of `total`: 1 until the fraction
    `decay_start` of the run, then falling linearly so that the last step trains at 1/n of the rates."""
    if decay_start is None:
        return 1.0
    start = math.floor(decay_start * total)
    if step < start:
        return 1.0
    return max(total - step, 0) / (total - start)


class AugmentedDiscriminator(torch.nn.Module):
    """The discriminator as the objective sees it under `--augment`: every batch it judges is augmented first.

    Real and generated batches alike, and inside gradient penalties too, so the objective needs to know
    nothing of it. Scores of the step's real batch go to the augment's `observe_real` (adaptive strength).
    """

    def __init__(self, discriminator: torch.nn.Module, augment: torch.nn.Module) -> None:
        super().__init__()
        self.discriminator, self.augment = discriminator, augment
        self.observe = getattr(augment, "observe_real", None)
        self.real: torch.Tensor | None = None
        """The real batch of the phase running: a call on it (or on a view of it) is a call on real images."""

    def forward(self, x: torch.Tensor, *condition: torch.Tensor) -> torch.Tensor:
        out = self.discriminator(self.augment(x), *condition)
        scores = out[0] if isinstance(out, tuple) else out  # (scores, a conditional discriminator's own loss)
        real = self.real
        if self.observe is not None and real is not None and x.shape == real.shape and x.data_ptr() == real.data_ptr():
            self.observe(scores.detach())
        return out


class SharedFake:
    """One generated batch per step for every phase of it: the generator runs forward once an iteration.

    Made with the graph through the generator (its parameters require gradients for that forward even in a
    phase that trains only the discriminator), so the generator's phase can train on it; stale once an
    optimiser steps the generator's weights, after which the next call generates anew.
    """

    def __init__(self) -> None:
        self.generator: torch.nn.Module | None = None
        self.value: torch.Tensor | None = None
        self._parameters: dict[int, list[torch.nn.Parameter]] = {}

    def get(self, generator: torch.nn.Module, batch: Batch) -> torch.Tensor:
        if self.value is None or generator is not self.generator:
            parameters = self._parameters.get(id(generator))
            if parameters is None:
                parameters = self._parameters[id(generator)] = list(generator.parameters())
            flags = [p.requires_grad for p in parameters]
            try:
                for parameter in parameters:
                    parameter.requires_grad_(True)
                with torch.enable_grad():
                    self.value = generator(batch.noise())
            finally:
                for parameter, flag in zip(parameters, flags):
                    parameter.requires_grad_(flag)
            self.generator = generator
        return self.value

    def clear(self) -> None:
        self.generator = self.value = None


def _unpack(output: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    if isinstance(output, tuple):
        return output[0], output[1]
    return output, {}


def _accumulate(sums: dict[str, torch.Tensor], counts: Counter, values: dict[str, torch.Tensor],
                finite_only: bool = False) -> None:
    """Add logged values up on the device: reading them forces a sync, so that waits for the log line.

    The first value is copied: it may be a buffer its owner changes in place (an augment's probability).
    `finite_only` (fp16, whose loss scaler skips the steps that overflow) leaves non-finite values out of the
    means, counting on the device."""
    for key, value in values.items():
        value = value.detach().float()
        if finite_only:
            finite = torch.isfinite(value)
            value, count = torch.where(finite, value, 0.0), finite.float()
        else:
            count = 1
        sums[key] = sums[key] + value if key in sums else value.clone()
        counts[key] = counts[key] + count


class Trainer:
    """Holds the models, optimisers, data position and counters of one run."""

    def __init__(self, plan: Plan, run_dir: Path, device: torch.device, *, progress: bool = True,
                 callbacks: list[Any] | None = None, world: _distributed.World | None = None) -> None:
        """`callbacks` replaces the plan's (every run's built-in ones and those asked for): [] trains, nothing more.
        `world`: the processes of a distributed run (default: the one this process joined, if any)."""
        s = plan.settings
        self.plan, self.run_dir, self.device, self.progress = plan, Path(run_dir), device, progress
        self.world = world or _distributed.current()
        _speed.configure_kernels(device, s.deterministic)
        self.models = torch.nn.ModuleDict(plan.build_networks(device))
        # rank 0 says a mistake once; every rank stops
        self.world.decide(lambda: _distributed.check_split(self.world.size, s.batch_size, self.models, s.sync_bn))
        self.rank_statistics: list[torch.Tensor] = []
        """The BatchNorm statistics of a distributed run with --no-sync-bn: averaged over the ranks each step."""
        if self.world.joined and _distributed.batchnorms(self.models):
            self._distribute_batchnorm(s.sync_bn)
        images = len(plan.spec.sample_shape) == 3
        self.channels_last = s.channels_last if s.channels_last is not None else device.type == "cuda" and images
        if self.channels_last:
            _speed.to_channels_last(self.models)
        if s.compile:
            why = (f"objective '{plan.objective.name}' trains on the gradient of its scores with respect to its"
                   " inputs (a double backward, which torch.compile does not support)")
            _speed.compile_networks(self.models, list(plan.pieces), backend=s.compile_backend,
                                    eager={"discriminator": why} if plan.spec.needs.input_gradients else {})
        self.augment = plan.build_augment(device)
        # What the objective trains: the pieces (no generator average), the discriminator behind --augment.
        self.pieces = torch.nn.ModuleDict({role: self.models[role] for role in plan.pieces})
        self.trained = torch.nn.ModuleDict(dict(self.pieces.items()))
        if self.augment is not None:
            self.trained["discriminator"] = AugmentedDiscriminator(self.models["discriminator"], self.augment)
        self.judge: _conditioning.ConditionedDiscriminator | None = None
        self.class_frequencies: torch.Tensor | None = None
        if plan.spec.num_classes:  # objectives call G(z) and D(x): the engine adds the labels
            self.class_frequencies = plan.class_frequencies().to(device)
            maker = _conditioning.ConditionedGenerator(self.models["generator"], self.class_frequencies)
            self.judge = _conditioning.ConditionedDiscriminator(self.trained["discriminator"], maker, plan.objective)
            self.trained["generator"], self.trained["discriminator"] = maker, self.judge
        self.objective = plan.build_objective()
        self.phases = plan.build_phases(self.objective, self.trained)
        self.precision = _speed.Precision(s.precision, device, [p.name for p in self.phases],
                                          reduce=self._reduce_gradients if self.world.joined else None)
        self.batches = Batches(plan.load_data(), s.batch_size, s.seed, device, labels=plan.load_labels(),
                               world=self.world, value_range=plan.data.value_range)
        self.real_batches_per_step = sum(p.repeats for p in self.phases if p.uses_real) or 1
        self._piece_parameters = list(self.pieces.parameters())  # walking the modules each phase costs ~3 %
        self._trained_by = [
            {id(t) for group in p.optimizer.param_groups for t in group["params"]} for p in self.phases
        ]
        self._base_lrs = [[group["lr"] for group in p.optimizer.param_groups] for p in self.phases]
        self.schedules = {f"{slot}.{name}": (params, name, value)
                          for slot, params in plan.params.items() if slot in _schedules.MOVING_SLOTS
                          for name, value in _schedules.scheduled(params).items()}
        """{"objective.r1": (its parameters object, the field, the Schedule)}: set before each step."""
        self.scheduled_settings = plan.settings.scheduled_settings()
        """{"ema_half_life": its Schedule}: run settings whose users read them at the step (the generator average)."""
        self.scheduled = bool(self.schedules or self.scheduled_settings)
        """Whether anything moves over the run (then its span is checkpointed)."""
        self.schedule_span: int | None = None
        """The steps a schedule without its own STEPS spans: the run's length when it first trained."""
        judge = {id(t) for t in self.models["discriminator"].parameters()}
        self._trains_judge = [bool(trained & judge) for trained in self._trained_by]
        """Per phase: it trains the discriminator, so its real batch is what an adaptive augment observes."""
        regularization = getattr(self.models["generator"], "regularization", None)
        self._regularize = regularization if callable(regularization) else None
        """The generator's own loss terms (GeneratorProtocol.regularization, e.g. StyleGAN2's path length)."""
        maker = {id(t) for t in self.models["generator"].parameters()}
        self._trains_maker = [bool(trained & maker) for trained in self._trained_by]
        # One generated batch per step where each phase runs once; repeated phases (n critic steps) draw their own.
        self.shared_fake = SharedFake() if all(p.repeats == 1 for p in self.phases) else None
        fixed_count = 64 if images else 1024
        self.fixed_labels: torch.Tensor | None = None
        """The labels of the fixed-noise grid in a conditional run: a row per class."""
        if plan.spec.num_classes and images:
            self.fixed_labels = _conditioning.rows_of_classes(
                list(range(min(plan.spec.num_classes, _conditioning.GRID_CLASSES))), _conditioning.PER_ROW).to(device)
            fixed_count = len(self.fixed_labels)
        elif plan.spec.num_classes:
            self.fixed_labels = (torch.arange(fixed_count) % plan.spec.num_classes).to(device)
        self.prior = latent_sampler(self.objective)
        g = torch.Generator().manual_seed(s.seed + FIXED_NOISE_SEED_OFFSET)
        self.fixed_noise = self.prior(fixed_count, plan.latent_dim, "cpu", g).to(device)
        self.step = 0
        self.saved_step: int | None = None
        """Step of the newest checkpoint on disk, written or resumed from."""
        self.lr_multiplier: float | None = None  # of the objective's rates, when --lr-scale/--lr-decay-start apply
        if callbacks is None:
            self._callback_components = [component for component, _ in plan.callbacks]
            self.callbacks = plan.build_callbacks()
        else:
            self.callbacks = list(callbacks)
            self._callback_components = [None] * len(self.callbacks)
        if not self.world.main:  # rank 0 alone writes: the others keep the callbacks every rank must run
            kept = [(c, component) for c, component in zip(self.callbacks, self._callback_components)
                    if component is None or component.every_rank]
            self.callbacks, self._callback_components = [c for c, _ in kept], [component for _, component in kept]
        self.stopping = False
        """A stop was asked for (a signal): a phase's repeats end early, so the step ends and the stop is handled.
        Not in a many-process run, whose ranks must run the same repeats."""
        self.total_steps: int | None = None
        self._max_steps: int | None = None
        self._max_epochs: int | None = None
        self._reset_log()

    def _distribute_batchnorm(self, sync: bool | None) -> None:
        """BatchNorm of the global batch (--sync-bn, the default), or of each rank's share (--no-sync-bn)."""
        if sync is False:
            self.rank_statistics = [b for m in _distributed.batchnorms(self.models) for b in m.buffers()]
            return
        _distributed.synchronise_batchnorm(self.models)

    def _reduce_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        self.world.reduce_gradients(p for group in optimizer.param_groups for p in group["params"])

    # -- state --------------------------------------------------------------------------
    @property
    def sampling_generator(self) -> torch.nn.Module:
        """What samples, evaluations and exports are drawn with: the generator average where there is one."""
        return self.models[EMA_KEY] if EMA_KEY in self.models else self.models["generator"]

    def condition(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """What a call of the generator outside the objective adds: () in an unconditional run, else `n` labels
        drawn with the data's class frequencies (with `generator`, on its device)."""
        if self.class_frequencies is None:
            return ()
        frequencies = self.class_frequencies if generator is None else self.class_frequencies.to(generator.device)
        return (_conditioning.draw_labels(frequencies, n, generator),)

    @property
    def loss_scaling(self) -> bool:
        """Whether `--precision 16` scales the losses: a step whose loss overflowed is then skipped by its scaler,
        so a non-finite logged loss is not divergence (the weights tell)."""
        return bool(self.precision.scalers)

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "data": self.batches.state(),
            "models": self.models.state_dict(),
            "optimizers": {p.name: p.optimizer.state_dict() for p in self.phases},
            "fixed_noise": self.fixed_noise.cpu(),
            **({"schedule_span": self.schedule_span} if self.scheduled else {}),
            "rng": checkpoint.rng_state(),
            "settings": self.plan.settings.as_dict(),
            **({"augment": self.augment.state_dict()} if self.augment is not None else {}),
            **({"grad_scalers": self.precision.state_dict()} if self.precision.scalers else {}),
            "callbacks": {component.name: callback.state_dict()
                          for callback, component in zip(self.callbacks, self._callback_components)
                          if component is not None and hasattr(callback, "state_dict")},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = self.saved_step = state["step"]
        self.batches.restore(state["data"])
        self.models.load_state_dict(state["models"])
        for phase in self.phases:
            phase.optimizer.load_state_dict(state["optimizers"][phase.name])
        self.fixed_noise = state["fixed_noise"].to(self.device)
        self.schedule_span = state.get("schedule_span", self.schedule_span)
        if self.augment is not None and "augment" in state:
            self.augment.load_state_dict(state["augment"])
        self.precision.load_state_dict(state.get("grad_scalers", {}))
        checkpoint.set_rng_state(state["rng"])
        saved = state.get("callbacks", {})
        for callback, component in zip(self.callbacks, self._callback_components):
            if component is not None and component.name in saved and hasattr(callback, "load_state_dict"):
                callback.load_state_dict(saved[component.name])

    def save(self) -> Path:
        """Write the checkpoint of the step reached; a duty that objects (non-finite weights) keeps the old one.
        In a distributed run rank 0 writes it (the ranks hold the same weights)."""
        self._call("before_save")
        if not self.world.main:
            self.saved_step = self.step
            return self.checkpoint_path
        checkpoint.save_kept(self.state_dict(), self.checkpoint_path, self.step, self.plan.settings.keep)
        self.saved_step = self.step
        return self.checkpoint_path

    def save_as(self, name: str) -> Path:
        """A checkpoint of the step reached under another name in checkpoints/ (e.g. best.pt); last.pt is untouched."""
        self._call("before_save")
        path = self.checkpoint_path.with_name(name)
        if self.world.main:
            checkpoint.save_atomic(self.state_dict(), path)
        return path

    def evaluated(self, record: dict[str, Any], seconds: float = 0.0) -> None:
        """Hand what an evaluation measured to every callback (the log, the progress bar); the `seconds` it
        took do not count against the training's images/s."""
        self._started += seconds
        self._call("on_evaluate", record)

    # -- loop -----------------------------------------------------------------------------
    def _estimate_total(self, max_steps: int | None, max_epochs: int | None) -> int | None:
        if max_steps is not None:
            return max_steps
        if max_epochs is not None:
            return math.ceil(max_epochs * self.batches.per_epoch / self.real_batches_per_step)
        return None

    def _done(self, max_steps: int | None, max_epochs: int | None) -> bool:
        return (max_steps is not None and self.step >= max_steps) or (
            max_epochs is not None and self.batches.epoch >= max_epochs
        )

    def _apply_schedules(self) -> dict[str, Any]:
        """Set every scheduled parameter to its value at this step; returns {"objective.r1": value}."""
        values = {}
        for key, (params, name, schedule) in self.schedules.items():
            values[key] = _schedules.value_at(schedule, self.step, self.schedule_span or 1)
            object.__setattr__(params, name, values[key])  # frozen parameter classes too
        return values

    def _set_learning_rates(self, total: int | None) -> None:
        """--lr-scale and --lr-decay-start times each phase's rates, and the optimiser settings its objective
        schedules (Phase.hyperparameters): a scheduled rate scales every group's rate by the schedule's current
        value over its start, so groups keep their ratios."""
        s = self.plan.settings
        values = self._apply_schedules() if self.schedules else {}
        scaled = s.lr_scale is not None or s.lr_decay_start is not None
        factor = 1.0
        if scaled:
            factor = (s.lr_scale or 1.0) * (lr_factor(self.step, total, s.lr_decay_start) if total else 1.0)
            self.lr_multiplier = factor
        for phase, base_lrs in zip(self.phases, self._base_lrs):
            moved = {option: values[f"objective.{name}"] for option, name in phase.hyperparameters.items()
                     if f"objective.{name}" in values}
            if not scaled and not moved:
                continue  # the objective's own rates, untouched
            rate = moved.pop("lr", None)
            start = self.schedules[f"objective.{phase.hyperparameters['lr']}"][2] if rate is not None else None
            for group, base in zip(phase.optimizer.param_groups, base_lrs):
                if rate is not None:
                    base = rate if float(start) == 0 else base * rate / float(start)
                group["lr"] = base * factor
                group.update(moved)

    def _run_step(self, sums: dict[str, torch.Tensor], counts: Counter) -> int:
        """One generator step with all its phases; returns the number of real samples used."""
        used = 0
        world = self.world
        latent, size = self.plan.latent_dim, self.plan.settings.batch_size // world.size
        shared = self.shared_fake  # empty: the end of the previous step cleared it
        judge, labels = self.judge, None
        if judge is not None:
            judge.maker.made = []
        regularize = self._regularize  # once a step, in the first phase that trains the generator
        for phase, trained, trains_judge, trains_maker in zip(self.phases, self._trained_by, self._trains_judge,
                                                               self._trains_maker):
            # Parameters this phase does not train need no gradients: skips e.g. the
            # discriminator's weight gradients during the generator's backward pass.
            for parameter in self._piece_parameters:
                parameter.requires_grad_(id(parameter) in trained)
            for repeat in range(phase.repeats):
                if repeat and self.stopping and not world.many:  # many critic steps: the stop comes sooner
                    break
                real = self.batches.next() if phase.uses_real else None
                if real is not None and self.channels_last and real.dim() == 4:
                    real = real.contiguous(memory_format=torch.channels_last)
                used += 0 if real is None else real.shape[0]
                if judge is not None:  # a phase's calls share its labels: its real batch's, else the step's last
                    if real is not None:
                        labels = self.batches.last_labels
                    elif labels is None:
                        labels = world.local(_conditioning.draw_labels(self.class_frequencies, size * world.size))
                    judge.begin(labels, real)
                batch = Batch(real, size if real is None else real.shape[0], latent, self.device, self.prior,
                              labels=None if real is None else self.batches.last_labels, condition=labels,
                              step=self.step, shared=shared, world=world if world.joined else None)
                if self.augment is not None:
                    self.trained["discriminator"].real = real if trains_judge else None
                with blame(self.plan.objective, f"training phase '{phase.name}'"):
                    with self.precision.loss(phase.name):
                        loss, extras = _unpack(phase.loss(self.trained, batch))
                        auxiliary = None if judge is None else judge.take_auxiliary()
                        if auxiliary is not None:  # ACGAN's classification loss, on real and generated samples
                            loss, extras = loss + auxiliary, {**extras, f"{phase.name}/classification": auxiliary}
                        if regularize is not None and trains_maker:
                            loss, extras = self._regularized(regularize, phase.name, loss, extras, size,
                                                             labels if judge is not None else None)
                            regularize = None
                    if loss.ndim != 0:  # shape metadata: no device sync
                        raise PluginFailure(
                            f"objective '{self.plan.objective.name}' from {self.plan.objective.origin} broke its"
                            f" contract: phase '{phase.name}' returned a loss of shape {tuple(loss.shape)}, not a"
                            " scalar (reduce it, e.g. with .mean())")
                    phase.optimizer.zero_grad(set_to_none=True)
                    skipped = self.precision.step(phase.name, loss, phase.optimizer)
                    if phase.after_step is not None:
                        phase.after_step(self.pieces)
                if trains_maker:  # the generator moved: its samples are another step's
                    if shared is not None:
                        shared.clear()
                    if judge is not None:
                        judge.maker.made = []
                if skipped is None:
                    _accumulate(sums, counts, {f"loss/{phase.name}": loss, **extras})
                else:  # fp16: a step its scaler skipped may have a non-finite loss, left out of the means
                    _accumulate(sums, counts, {f"loss/{phase.name}": loss, **extras}, finite_only=True)
                    _accumulate(sums, counts, {f"precision/skipped_{phase.name}": skipped})
        if shared is not None:
            shared.clear()  # nothing of this step's graph outlives it
        end_step = getattr(self.augment, "end_step", None)
        if end_step is not None:
            with blame(self.plan.augment, "ending a step"):
                _accumulate(sums, counts, end_step(self.step) or {})
        return used

    def _regularized(self, regularize: Any, phase: str, loss: torch.Tensor, extras: dict[str, Any], size: int,
                     labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, Any]]:
        """The phase's loss plus the generator's own terms for this step (none on the steps a lazy one skips)."""
        with blame(self.plan.pieces["generator"], "computing its regularization"):
            terms = regularize(self.prior(size, self.plan.latent_dim, self.device), labels, self.step)
        for name, term in (terms or {}).items():
            if not (isinstance(term, torch.Tensor) and term.ndim == 0):
                raise PluginFailure(
                    f"generator '{self.plan.pieces['generator'].name}' from {self.plan.pieces['generator'].origin} "
                    f"broke its contract: regularization() must return scalar tensors, and '{name}' is "
                    f"{type(term).__name__}{tuple(term.shape) if isinstance(term, torch.Tensor) else ''}")
            loss = loss + term
            extras = {**extras, f"{phase}/{name}": term.detach()}
        return loss, extras

    def write_samples(self, tag: str) -> Path:
        path = self.run_dir / "samples" / f"{tag}.png"
        if not self.world.main:
            return path
        generator = self.sampling_generator
        was_training = generator.training
        generator.eval()
        condition = () if self.fixed_labels is None else (self.fixed_labels,)
        with torch.no_grad():
            samples = generator(self.fixed_noise, *condition).float().cpu()
        generator.train(was_training)
        tmp = path.with_name(f".{path.stem}.tmp.png")  # a grid appears whole or not at all
        try:
            render.save(samples, tmp, self.plan.data.value_range,
                        per_row=_conditioning.PER_ROW if self.fixed_labels is not None else None,
                        centres=self.plan.data.mode_centers)
            os.replace(tmp, path)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            raise checkpoint.write_error(f"samples {path}", error) from None
        self._call("on_samples", tag, path)
        return path

    # -- logging: values accumulate on the device and are read once per log line ------------
    def _reset_log(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: Counter = Counter()
        self._used, self._started = 0, time.perf_counter()

    def pending_values(self) -> dict[str, torch.Tensor]:
        """Mean of each logged value since the last log line, still on the device."""
        return {key: value / self._counts[key] for key, value in self._sums.items()}

    @property
    def finished(self) -> bool:
        """The step just trained was the run's last."""
        return self._done(self._max_steps, self._max_epochs)

    @property
    def epoch(self) -> int:
        """Completed epochs."""
        return self.batches.epoch

    @property
    def total_epochs(self) -> int | None:
        """The epochs the run's steps span (None before training starts, or with no length): what per-epoch duties
        space their work by."""
        if self.total_steps is None:
            return None
        return math.ceil(self.total_steps * self.real_batches_per_step / self.batches.per_epoch)

    def flush_log(self) -> None:
        """One log line of what accumulated since the last (nothing if no step ran since), to every callback."""
        if not self._counts:
            return
        seconds = time.perf_counter() - self._started
        pending = self.pending_values()
        means = self.world.mean(torch.stack(list(pending.values()))).tolist()  # the one device sync of a log line
        record: dict[str, Any] = {"step": self.step, "epoch": self.batches.epoch}
        record.update((key, round(mean, 6) if math.isfinite(mean) else mean) for key, mean in zip(pending, means))
        record["images_per_s"] = round(self._used * self.world.size / seconds, 1) if seconds > 0 else None
        if self.lr_multiplier is not None:
            record["lr_multiplier"] = float(f"{self.lr_multiplier:.6g}")
        for phase in self.phases:  # host floats: reading them costs no sync
            record[f"lr/{phase.name}"] = float(f"{phase.optimizer.param_groups[0]['lr']:.6g}")
        for key, (params, name, schedule) in self.schedules.items():
            value = getattr(params, name)
            if not isinstance(schedule, tuple):
                record[f"schedule/{key}"] = float(f"{value:.6g}")
                continue
            for i, (item, written) in enumerate(zip(value, schedule)):
                if isinstance(written, _schedules.Schedule):
                    record[f"schedule/{key}[{i}]"] = float(f"{item:.6g}")
        for name, schedule in self.scheduled_settings.items():
            record[f"schedule/{name}"] = float(f"{schedule.at(self.step, self.schedule_span or 1):.6g}")
        self._reset_log()
        self._call("on_log", record)

    def _call(self, event: str, *args: Any) -> None:
        for callback, component in zip(self.callbacks, self._callback_components):
            method = getattr(callback, event, None)
            if method is None:
                continue
            if component is None:
                method(self, *args)
            else:
                with blame(component, f"handling {event}"):
                    method(self, *args)

    def _teardown(self) -> None:
        """Every callback's teardown, each on its own: one that fails is a warning, never the run's error."""
        for callback, component in zip(self.callbacks, self._callback_components):
            method = getattr(callback, "teardown", None)
            if method is None:
                continue
            try:
                method(self)
            except Exception as error:
                who = f"callback '{component.name}' from {component.origin}" if component else "a callback"
                warnings.warn(f"{who} failed in teardown: {type(error).__name__}: {error}", stacklevel=2)

    def _lost_rank(self, error: Exception) -> RunStopped:
        kept = (f"the checkpoint of step {self.saved_step} is kept" if self.saved_step is not None
                else "no checkpoint had been written yet")
        return LostProcess(f"rank {self.world.rank} at step {self.step}: {error}; {kept}; torchrun's report below"
                           " names the process that failed")

    def train(self, max_steps: int | None = None, max_epochs: int | None = None) -> None:
        s = self.plan.settings
        self.models.train()
        total = self.total_steps = self._estimate_total(max_steps, max_epochs)
        # A schedule's span is fixed when the run first trains, then checkpointed.
        if self.scheduled and self.schedule_span is None:
            self.schedule_span = total or 1
        self._max_steps, self._max_epochs = max_steps, max_epochs
        self.stopping = False
        if self.world.main:  # the other ranks never touch the run folder
            checkpoint.remove_leftovers(self.checkpoint_path.parent)
        self._reset_log()
        try:
            self.world.broadcast(self.models)  # one model on every rank, however each built or loaded it
            self._call("on_train_start")
            self._started = time.perf_counter()  # start-up work (an extractor, reference features) is not training
            while not self._done(max_steps, max_epochs):
                epoch_before = self.batches.epoch
                self._set_learning_rates(total)
                self._used += self._run_step(self._sums, self._counts)
                self.world.average_buffers(self.rank_statistics)
                self.step += 1
                if self.step % s.log_every == 0 or self._done(max_steps, max_epochs):
                    self.flush_log()
                if self.batches.epoch != epoch_before:
                    self._call("on_epoch_end")
                self._call("on_step_end")
            self._call("on_train_end")
        except LostProcess as error:
            raise self._lost_rank(error) from None
        finally:
            for parameter in self.pieces.parameters():
                parameter.requires_grad_(True)
            self.batches.close()
            self._teardown()
