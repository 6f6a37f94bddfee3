"""What the engine expects of the objects a plugin's factories return, as typing Protocols.

Nothing needs to inherit from these: they document the contract and let a type checker check a
plugin. The engine checks the same contract at run time and names the component that breaks it.
Stability: 0.x; these only gain optional members until 1.0.

Layer: contracts (docs/architecture.md).
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

from ._components import Batch, Phase


@runtime_checkable
class GeneratorProtocol(Protocol):
    """A `torch.nn.Module`: noise (N, latent_dim) -> samples (N, *sample_shape) in the data's value range.

    `condition` is None for unconditional runs; a generator registered `conditional=True` receives the int64 class
    labels (N,) of a `--conditional` run there.

    Two optional members, found by name:

    - `truncated(z, psi, condition=None)`: samples with a truncation of the generator's own (StyleGAN2's in w
      space, w = w_avg + psi (w - w_avg)); `gan sample --truncation PSI`, walks and `gan eval --truncation` use it
      instead of resampling the noise beyond +-PSI.
    - `regularization(z, condition, step) -> {name: scalar tensor} | None`: loss terms of the generator's own
      (StyleGAN2's path-length penalty), called once a step in the first phase that trains the generator with a
      fresh noise batch `z` of the phase's size, that phase's labels (None unconditional) and the step number.
      Each term is added to the phase's loss and logged as `PHASE/NAME`; None skips a step (a lazy regulariser
      weights its terms by its interval itself). Keep running statistics in buffers: checkpoints carry them.
    """

    def __call__(self, z: Any, condition: Any = None) -> Any: ...


@runtime_checkable
class DiscriminatorProtocol(Protocol):
    """A `torch.nn.Module`: samples (or codes) -> one raw score per sample, shape (N,) or (N, 1), no sigmoid.

    A discriminator registered `conditional=True` receives the class labels of a `--conditional` run as `condition`,
    and returns the scores, or `(scores, auxiliary_loss)` to add a loss of its own to every phase (ACGAN).
    """

    def __call__(self, x: Any, condition: Any = None) -> Any: ...


@runtime_checkable
class EncoderProtocol(Protocol):
    """A `torch.nn.Module`: samples (N, *sample_shape) -> codes (N, latent_dim)."""

    def __call__(self, x: Any) -> Any: ...


LossFunction = Callable[[Any, Batch], Any]
"""loss(models, batch) -> a scalar tensor, or (scalar, {name: scalar tensor to log})."""


@runtime_checkable
class ObjectiveProtocol(Protocol):
    """What an objective's factory returns. `sample_latent` is optional: define it for a prior other than N(0, I)."""

    def phases(self, models: Any) -> list[Phase]:
        """The optimisation steps of one iteration, in order; `models` has .generator, .discriminator, ..."""
        ...


@runtime_checkable
class LatentPrior(Protocol):
    def sample_latent(self, n: int, latent_dim: int, device: Any, generator: Any = None) -> Any: ...


@runtime_checkable
class MetricProtocol(Protocol):
    """What a metric's factory returns: samples (N, *sample_shape) and the DataSource -> {name: number}."""

    def __call__(self, samples: Any, data: Any) -> dict[str, Any]: ...


@runtime_checkable
class FeatureMetricProtocol(Protocol):
    """What a feature metric's factory returns (`Metric(inputs="features")`): Features of fake and real -> {name: number}."""

    def __call__(self, fake: Any, real: Any) -> dict[str, Any]: ...


@runtime_checkable
class ExtractorProtocol(Protocol):
    """What a feature extractor's factory returns."""

    protocol: dict[str, Any]
    """Shown with every number: the network, its input size, how images were resized."""
    cache_key: str
    """Names the network and its weights: reference features are cached under it."""

    def extract(self, images: Any) -> dict[str, Any]:
        """Float images (N, C, H, W) in [0, 1] -> {"features": (N, D), "logits": (N, K), optional}."""
        ...


class AugmentProtocol(Protocol):
    """What an augment's factory returns: a `torch.nn.Module` (its buffers are checkpointed) with these methods."""

    def __call__(self, x: Any) -> Any:
        """A batch (N, *sample_shape) augmented, same shape, differentiable in x."""
        ...

    def observe_real(self, scores: Any) -> None:
        """Optional: the discriminator's raw scores (detached, on the device) of an augmented real batch."""
        ...

    def end_step(self, step: int) -> dict[str, Any] | None:
        """Optional: after each training step (`step` counts from 0); scalar tensors to log, or None."""
        ...


class CallbackProtocol(Protocol):
    """What a callback's factory returns; define only the events you need (all are optional).

    `run` is the trainer. Its members for callbacks, the same the core's own callbacks use (anything else on it is
    internal):

    - where it stands: `run.step`, `run.epoch`, `run.finished` (the step just trained was the last),
      `run.total_steps`, `run.total_epochs` (the epochs those steps span), `run.saved_step` (of the last checkpoint, or None), `run.run_dir`, `run.progress` (a bar
      was asked for), `run.device`;
    - what it trains: `run.models` (a ModuleDict: "generator", "discriminator", maybe "encoder", and
      `run.models[EMA_KEY]`, the generator average, when the run keeps one), `run.sampling_generator` (the average
      if there is one, else the generator: what grids and evaluations draw with), `run.phases` (the objective's
      phases, each with its `name` and `optimizer`), `run.loss_scaling` (`--precision 16` skips overflowed steps);
    - drawing from it: `run.prior(n, latent_dim, device, generator)` (the objective's noise),
      `run.condition(n, generator)` (() unconditionally, else labels drawn with the data's class frequencies),
      `run.class_frequencies` (None unconditionally);
    - the run's plan: `run.plan.settings` (every setting), `run.plan.latent_dim`, `run.plan.spec` (sample shape,
      value range, classes), `run.plan.data` (the dataset's source), `run.plan.evaluator` (what `--eval-every`
      measures, or None);
    - several processes (torchrun): `run.world.main` (this process writes the run's files; false on the other
      ranks), `run.world.any(flag)` (true on every rank where any rank's flag is), `run.world.local(batch)` (this
      process's slice of a global batch), `run.world.share(n)` and `run.world.gather(tensor, n)`,
      `run.world.joined`;
    - acting: `run.save()` (checkpoints/last.pt), `run.save_as(name)` (another file in checkpoints/),
      `run.write_samples(tag)`, `run.flush_log()`, `run.pending_values()` (the logged means since the last line,
      still on the device), `run.evaluated(record, seconds)` (hand a measurement to every callback's
      `on_evaluate`), `run.stopping = True` (end after this step, as a signal does).

    `on_train_end` runs when the loop finished; `teardown` always, errors included (a failing teardown is only a
    warning).
    """

    def on_train_start(self, run: Any) -> None: ...
    def on_step_end(self, run: Any) -> None: ...
    def on_epoch_end(self, run: Any) -> None: ...
    def on_log(self, run: Any, means: dict[str, float]) -> None: ...
    def on_evaluate(self, run: Any, record: dict[str, Any]) -> None: ...
    def on_samples(self, run: Any, tag: str, path: Any) -> None: ...
    def before_save(self, run: Any) -> None: ...
    def on_train_end(self, run: Any) -> None: ...
    def teardown(self, run: Any) -> None: ...
