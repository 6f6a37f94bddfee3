"""The component types a plugin registers, and what the engine hands their factories.

This module imports nothing heavy: plugins import it at import time, and torch is only
imported inside factories.

Layer: contracts (docs/architecture.md).
"""
from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator, Literal

from .errors import IncompatibleError

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*\Z")

EMA_KEY = "generator_ema"
"""The generator average's entry among a run's networks (`run.models[EMA_KEY]` for a callback; "models" in a
checkpoint), present when the run keeps one (`--ema`, `--ema-half-life`)."""

PRECISION_NAMES = ("32", "bf16", "16")
"""The values of `--precision`: float32, bfloat16 autocast, float16 autocast with loss scaling (here, not in the
engine's modules, so that the command line lists them without importing torch)."""


@dataclass(frozen=True)
class Origin:
    """Where a registered component came from."""

    plugin: str
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        if self.distribution:
            return f"plugin '{self.plugin}' ({self.distribution} {self.version})"
        return f"plugin '{self.plugin}'"


@dataclass(frozen=True)
class Needs:
    """What an objective needs from the networks it trains.

    Network factories receive these in `NetworkSpec.needs` and either build accordingly
    or raise `IncompatibleError` saying why they cannot.
    """

    encoder: bool = False
    """The objective trains an encoder (e.g. an adversarial autoencoder)."""
    discriminator_batchnorm: bool = True
    """False: the discriminator must not mix samples through BatchNorm (per-sample penalties)."""
    discriminator_input: Literal["samples", "latent"] = "samples"
    """What the discriminator judges: data samples, or latent codes."""
    input_gradients: bool = False
    """The discriminator's loss trains on the gradient of its scores with respect to its inputs (a gradient
    penalty, through `gan_registry.input_gradients`): a double backward, which torch.compile cannot run, so
    under `--compile` the discriminator runs eager."""

    def describe(self) -> list[str]:
        lines = []
        if self.encoder:
            lines.append("an encoder piece (the architecture must provide one)")
        if not self.discriminator_batchnorm:
            lines.append("no BatchNorm in the discriminator (layer/instance norm or none)")
        if self.discriminator_input == "latent":
            lines.append("a discriminator on latent codes, not on samples")
        return lines


@dataclass(frozen=True)
class NetworkSpec:
    """What a generator, discriminator or encoder factory builds for."""

    sample_shape: tuple[int, ...]
    """Shape of one data sample, e.g. (1, 32, 32) for images or (2,) for points."""
    latent_dim: int
    value_range: tuple[float, float] | None
    """Range of the data; (-1, 1) asks for a Tanh output, None for an unbounded one."""
    needs: Needs = Needs()
    num_classes: int | None = None
    """The number of classes to condition on (`gan run --conditional`), None for an unconditional run. Only a piece
    registered with `conditional=True` is built with it: a generator then takes `forward(z, condition)` and a
    discriminator `forward(x, condition)`, `condition` being int64 labels (N,) in [0, num_classes)."""


@dataclass
class ConditionParams:
    """The parameters of how a conditional discriminator takes the class: subclass it in a discriminator's params
    (`class DiscriminatorParams(ConditionParams): ...`) and hand both to `gan_registry.layers.ClassCondition`."""

    conditioning: Literal["projection", "acgan"] = field(default="projection", metadata={"help": (
        "how a --conditional run's discriminator takes the class: projection (Miyato & Koyama 2018) or acgan, an "
        "auxiliary classifier whose loss joins every phase (Odena et al. 2017)")})
    acgan_weight: float = field(default=1.0, metadata={"help": "weight of ACGAN's classification loss (conditioning=acgan)"})

    def __post_init__(self) -> None:
        if not self.acgan_weight > 0:
            raise ValueError(f"acgan_weight must be > 0, got {self.acgan_weight}")


def resolve_norm(requested: str, spec: NetworkSpec, *, usual: str = "batch", per_sample: str = "layer") -> str:
    """Resolve a discriminator's `norm` parameter against what the objective needs.

    "auto" becomes `usual`, or `per_sample` when the objective forbids BatchNorm in the
    discriminator; an explicit "batch" is then refused with the reason.
    """
    forbids_batchnorm = not spec.needs.discriminator_batchnorm
    if requested == "batch" and forbids_batchnorm:
        raise IncompatibleError(
            "norm=batch mixes the samples of a batch, and this objective penalises the discriminator "
            f"per sample; use a per-sample norm (norm=auto picks {per_sample})"
        )
    if requested == "auto":
        return per_sample if forbids_batchnorm else usual
    return requested


@dataclass(frozen=True)
class DataContext:
    """What a dataset factory is told by the run."""

    data_dir: str | None = None
    image_size: int | None = None
    """--image-size, where the user gave one; image datasets resize to it."""
    registry: Any = None
    """The run's `Registry` of installed plugins, for datasets made of other datasets (`registry.get("dataset",
    name)`); None where a dataset is built outside a run."""


class Stream:
    """Samples read in order rather than by index: what `DataSource.load()` returns for data kept in shards (e.g.
    WebDataset tar files, on disk or at URLs), of which each process of a run reads its own.

    The engine reads one epoch at a time. The same (seed, epoch, rank, world) must give the same samples in the
    same order: a resumed run asks for its epoch again with `skip`, the samples it had already taken, and must go
    on with what an uninterrupted run would have read. Samples are (C, H, W) tensors, uint8 or in the
    DataSource's value range, each with its class label (None for unlabelled data).
    """

    def __len__(self) -> int:
        """The samples in all shards."""
        raise NotImplementedError

    def per_process(self, world: int) -> int:
        """The fewest samples any of `world` processes reads in an epoch (each epoch lasts that long)."""
        raise NotImplementedError

    def read(self, *, seed: int, epoch: int, rank: int, world: int, skip: int = 0) -> Iterator[tuple[Any, int | None]]:
        """Process `rank` of `world`'s samples of `epoch`, in order, less the first `skip`: (sample, label) pairs."""
        raise NotImplementedError

    def head(self, n: int) -> tuple[Any, Any]:
        """The first `n` samples of epoch 0 read by one process, stacked, and their labels (int64) or None: a
        fixed reference for metrics, read without going through every shard."""
        import torch

        pairs = list(itertools.islice(self.read(seed=0, epoch=0, rank=0, world=1), n))
        images = torch.stack([torch.as_tensor(sample) for sample, _ in pairs])
        labels = [label for _, label in pairs]
        return images, None if None in labels else torch.tensor(labels, dtype=torch.int64)


@dataclass
class DataSource:
    """A dataset, described before it is loaded so shapes are checked first.

    `load()` returns a tensor of shape (N, *sample_shape), held in memory (or memory-mapped) and batched by
    index; a `torch.utils.data.Dataset` of such samples, read by DataLoader workers; or a `Stream`, read in order
    from shards, each process its own. Samples are floats in `value_range`, or uint8 images (0 to 255, a quarter
    of float32's bytes) that the engine maps onto `value_range` on the device (`to_values`).
    """

    sample_shape: tuple[int, ...]
    value_range: tuple[float, float] | None
    load: Callable[[], Any]
    load_heldout: Callable[[], Any] | None = None
    """Optional held-out samples (same form as `load()`), for evaluation."""
    reference: dict[str, Any] = field(default_factory=dict)
    """Facts about the true distribution that metrics may use, e.g. {"mode_centers": ..., "mode_std": ...}.
    "mode_centers", an (M, 2) tensor, is also drawn as red crosses in the run's scatter plots of 2D samples."""

    @property
    def mode_centers(self) -> Any:
        """The known mode centres of 2D data (`reference["mode_centers"]`), or None."""
        centres = self.reference.get("mode_centers") if isinstance(self.reference, dict) else None
        return centres if getattr(centres, "shape", (0, 0))[-1:] == (2,) else None
    classes: tuple[str, ...] | None = None
    """Class names, where the data has labels (label i is classes[i]); None for unlabelled data."""
    load_labels: Callable[[], Any] | None = None
    """The class label of each sample `load()` returns, an int64 tensor (N,), where the data has labels."""
    load_heldout_labels: Callable[[], Any] | None = None
    """The same for `load_heldout()`."""


@dataclass
class Phase:
    """One optimisation step of a training iteration, run `repeats` times in order.

    `loss(models, batch)` returns a scalar tensor, or `(loss, extras)` where extras is a
    dict of scalar tensors to log. `after_step(models)` runs after each optimiser step
    (e.g. weight clipping).
    """

    name: str
    loss: Callable[..., Any]
    optimizer: Any
    repeats: int = 1
    uses_real: bool = True
    after_step: Callable[[Any], None] | None = None
    hyperparameters: dict[str, str] = field(default_factory=dict)
    """Which of the objective's parameters its optimiser was built with, by the optimiser's name for them, e.g.
    {"lr": "lr_generator", "betas": "betas"}: where one is a schedule, the engine sets its current value on every
    parameter group before each step (times --lr-scale for "lr")."""


def standard_normal(n: int, latent_dim: int, device: Any, generator: Any = None) -> Any:
    """The default latent prior: N(0, I) noise of shape (n, latent_dim)."""
    import torch  # ~3 s: every plugin and `gan --help` import this module; only drawing needs torch

    return torch.randn(n, latent_dim, device=device, generator=generator)


def latent_sampler(objective: Any) -> Callable[..., Any]:
    """The objective's prior (its `sample_latent`) if it has one, else the standard normal."""
    return getattr(objective, "sample_latent", None) or standard_normal


@dataclass
class Batch:
    """What a phase's loss receives: the real batch (if the phase uses one) and a noise source.

    `labels` are the real samples' class labels where the dataset has them (None otherwise), and
    `condition` the labels this phase's generator and discriminator calls are conditioned on in a conditional run
    (None otherwise). The engine binds them itself: `models.generator(z)` and `models.discriminator(x)` are
    conditioned already, so an objective needs no change to train conditionally.
    """

    real: Any
    size: int
    latent_dim: int
    device: Any
    prior: Callable[..., Any] = standard_normal
    labels: Any = None
    condition: Any = None
    step: int = 0
    """The engine's count of generator steps trained before this one: what a lazy regulariser (every k steps)
    keys on, so that a resumed run applies it on the same steps as an unbroken one."""
    shared: Any = field(default=None, repr=False, compare=False)
    """The engine's store of this step's generated batch (see `fake`); None outside the engine."""

    world: Any = field(default=None, repr=False, compare=False)
    """The processes of a distributed run (None in one process): `size` is then this rank's share of the batch."""

    def noise(self, n: int | None = None) -> Any:
        """`n` (default: the batch size) latent vectors from the run's prior.

        In a distributed run every rank draws the noise of the global batch (`n` times the world size) and
        keeps its slice: the ranks' random states stay equal, and the run draws what one process would."""
        n = n or self.size
        if self.world is None or self.world.size == 1:
            return self.prior(n, self.latent_dim, self.device)
        return self.world.local(self.prior(n * self.world.size, self.latent_dim, self.device))

    def rand(self, n: int | None = None) -> Any:
        """`n` (default: the batch size) uniform numbers in [0, 1), one per sample (e.g. WGAN-GP's interpolation
        weights), drawn for the global batch and sliced as `noise` is."""
        import torch

        n = n or self.size
        ranks = 1 if self.world is None else self.world.size
        drawn = torch.rand(n * ranks, device=self.device)
        return drawn if ranks == 1 else self.world.local(drawn)

    def fake(self, generator: Any) -> Any:
        """`generator(self.noise())`: the generated batch of this phase, with the graph through the generator.

        Call this rather than the generator yourself: where the objective's schedule runs each phase once per
        step, the engine hands every phase of the step the same batch, so an iteration runs one generator
        forward (as the PyTorch DCGAN tutorial's loop does). A phase that trains the discriminator only should
        `.detach()` it. Where the schedule repeats a phase (WGAN's critic steps), each call generates anew.
        """
        if self.shared is not None:
            return self.shared.get(generator, self)
        return generator(self.noise())


def _require_param_dataclass(params: type | None, owner: str) -> None:
    if params is None:
        return
    if not (isinstance(params, type) and dataclasses.is_dataclass(params)):
        raise TypeError(f"{owner}: params must be a dataclass type, got {params!r}")
    for f in dataclasses.fields(params):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise TypeError(f"{owner}: parameter '{f.name}' needs a default")


@dataclass(frozen=True, kw_only=True)
class Component:
    """Base of every registered component: a name, a one-line summary, typed parameters."""

    kind: ClassVar[str] = "component"
    name: str
    summary: str
    params: type | None = None
    """A dataclass whose fields (with defaults and `metadata={"help": ...}`) are the parameters."""
    origin: Origin | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise ValueError(
                f"{self.kind} name {self.name!r} is invalid: use lowercase letters, digits and '-'"
                " (pattern [a-z0-9][a-z0-9-]*)"
            )
        if not self.summary or "\n" in self.summary.strip():
            raise ValueError(f"{self.kind} '{self.name}': summary must be one non-empty line")
        _require_param_dataclass(self.params, f"{self.kind} '{self.name}'")

    def default_params(self) -> Any:
        return self.params() if self.params is not None else None


@dataclass(frozen=True, kw_only=True)
class _Network(Component):
    factory: Callable[[Any, NetworkSpec], Any]
    """factory(params, spec) -> torch.nn.Module; raise IncompatibleError to refuse."""
    conditional: bool = False
    """Its factory builds a class-conditional network when `spec.num_classes` is set (see NetworkSpec): what
    `gan run --conditional` asks of the generator and the discriminator. A conditional discriminator returns
    its scores, or `(scores, auxiliary_loss)` where it adds a loss of its own to every phase (ACGAN's classifier:
    see `gan_registry.layers.ClassCondition`)."""


@dataclass(frozen=True, kw_only=True)
class Generator(_Network):
    """Maps a (N, latent_dim) noise batch to (N, *sample_shape) samples."""

    kind: ClassVar[str] = "generator"


@dataclass(frozen=True, kw_only=True)
class Discriminator(_Network):
    """Maps a batch to one raw score (logit) per sample, shape (N,) or (N, 1); no sigmoid."""

    kind: ClassVar[str] = "discriminator"


@dataclass(frozen=True, kw_only=True)
class Encoder(_Network):
    """Maps a (N, *sample_shape) batch to (N, latent_dim) codes."""

    kind: ClassVar[str] = "encoder"


@dataclass(frozen=True, kw_only=True)
class Architecture(Component):
    """A preset naming the pieces used together; `--generator`/`--discriminator` override one."""

    kind: ClassVar[str] = "architecture"
    generator: str
    discriminator: str
    encoder: str | None = None
    latent_dim: int = 64
    """Default --latent-dim for runs of this architecture."""
    suggests: dict[str, Any] = field(default_factory=dict)
    """Run settings this architecture trains well with (see DEFAULTS_PRECEDENCE), e.g. its step budget."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_suggestions(self)

    def pieces(self) -> dict[str, str]:
        found = {"generator": self.generator, "discriminator": self.discriminator}
        if self.encoder:
            found["encoder"] = self.encoder
        return found


@dataclass(frozen=True, kw_only=True)
class Objective(Component):
    """Losses and their schedule.

    factory(params) -> an object with `phases(models) -> list[Phase]`, and optionally
    `sample_latent(n, latent_dim, device, generator=None) -> Tensor` when its prior is not
    the standard normal (used for training noise, sample grids and `gan sample`).
    """

    kind: ClassVar[str] = "objective"
    factory: Callable[[Any], Any]
    needs: Needs | Callable[[Any], Needs] = Needs()
    """What it needs of the networks: a Needs, or a function of its params returning one (e.g. no BatchNorm
    in the discriminator only while a gradient penalty is on)."""

    suggests: dict[str, Any] = field(default_factory=dict)
    """Run settings this objective trains well with (see DEFAULTS_PRECEDENCE), e.g. fewer generator steps where
    each takes several critic steps."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_suggestions(self)

    def needs_for(self, params: Any) -> Needs:
        return self.needs if isinstance(self.needs, Needs) else self.needs(params)


SUGGESTIBLE_SETTINGS = ("latent_dim", "batch_size", "steps", "lr_scale", "lr_decay_start", "ema_half_life")

DEFAULTS_PRECEDENCE = ("the command line and --config", "the dataset's suggestions", "the objective's suggestions",
                       "the architecture's suggestions", "the engine's defaults")
"""Where a run setting comes from, first match wins: what the user gave, then what the dataset suggests (it knows
its size and shape), then the objective (its schedule changes what a generator step costs: five critic steps
make a step five times dearer), then the architecture (its cost per step, its latent size), then the engine
(batch 64, 100 epochs, the architecture's latent_dim, learning rates as the objective's parameters set them).
`gan describe` shows each component's suggestions; a run's config.json names the source of every default."""


@dataclass(frozen=True)
class Scale:
    """A suggestion relative to what the sources below it chose, e.g. an objective's `suggests={"steps": Scale(0.4)}`:
    40 % of the steps the architecture suggests, or of the engine's 100 epochs where nothing suggests steps.

    A cheap network that needs many steps and a costly one that needs few then both get a share that suits them
    from an objective whose every step costs five critic steps, where a fixed count would starve the one or
    overrun the other's budget."""

    factor: float

    def __post_init__(self) -> None:
        if not (isinstance(self.factor, (int, float)) and self.factor > 0):
            raise ValueError(f"Scale factor must be a number > 0, got {self.factor!r}")

    def of(self, value: float, whole: bool) -> float:
        scaled = value * self.factor
        return max(1, round(scaled)) if whole else scaled

    def __str__(self) -> str:
        return f"{self.factor:g}x"


SCALABLE_SETTINGS = ("batch_size", "steps", "lr_scale", "ema_half_life")


PARAM_SUGGESTION_SLOTS = ("objective", "augment")
"""Whose parameters a component may suggest, as `"objective.NAME"`: a dataset knows the penalty weight its scale
wants (the 2D toys train WGAN-GP with lambda 0.1, as the paper's toy code), an architecture the recipe its paper
trained with. A suggestion applies only where the chosen component has that parameter and the user gave none."""


def check_suggestions(component: Any) -> None:
    for key, value in component.suggests.items():
        slot, dot, _ = key.partition(".")
        if dot:
            if slot not in PARAM_SUGGESTION_SLOTS or not _:
                raise ValueError(f"{component.kind} '{component.name}': cannot suggest '{key}' (parameters it may "
                                 f"suggest: {', '.join(s + '.NAME' for s in PARAM_SUGGESTION_SLOTS)})")
            if isinstance(value, Scale):
                raise ValueError(f"{component.kind} '{component.name}': '{key}' cannot be a Scale (scalable: "
                                 f"{', '.join(SCALABLE_SETTINGS)})")
            continue
        if key not in SUGGESTIBLE_SETTINGS:
            raise ValueError(f"{component.kind} '{component.name}': cannot suggest '{key}' "
                             f"(valid: {', '.join(SUGGESTIBLE_SETTINGS)}, or "
                             f"{', '.join(s + '.NAME' for s in PARAM_SUGGESTION_SLOTS)})")
        if isinstance(value, Scale) and key not in SCALABLE_SETTINGS:
            raise ValueError(f"{component.kind} '{component.name}': '{key}' cannot be a Scale "
                             f"(scalable: {', '.join(SCALABLE_SETTINGS)})")


@dataclass(frozen=True, kw_only=True)
class Dataset(Component):
    """factory(params, DataContext) -> DataSource."""

    kind: ClassVar[str] = "dataset"
    factory: Callable[[Any, DataContext], DataSource]
    extractor: str | None = None
    """The feature extractor its image metrics use by default (else the engine's default, inception-v3)."""
    suggests: dict[str, Any] = field(default_factory=dict)
    """Run settings this data trains well with (latent_dim, batch_size, steps, lr_scale,
    lr_decay_start, ema_half_life), used where the user set nothing (DEFAULTS_PRECEDENCE); `gan describe` and
    `gan run` show them."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_suggestions(self)


@dataclass(frozen=True, kw_only=True)
class Metric(Component):
    """An evaluation of generated samples.

    With `inputs="samples"`: factory(params) -> callable(samples, data: DataSource) -> dict[str, float].
    With `inputs="features"`: factory(params) -> callable(fake: Features, real: Features) -> dict[str, float],
    on the features a feature extractor gives of generated and of reference images (FID, KID, ...).
    Either raises IncompatibleError when it does not apply (e.g. it needs known mode centres).
    """

    kind: ClassVar[str] = "metric"
    factory: Callable[[Any], Any]
    inputs: Literal["samples", "features"] = "samples"
    better: Literal["lower", "higher"] | None = None
    """Whether a lower or a higher first value is better; what `--eval-every` needs to keep `best.pt`."""


@dataclass(frozen=True)
class Features:
    """What a feature extractor made of one set of images, for feature metrics."""

    features: Any
    """(N, D) float tensor on the CPU."""
    logits: Any = None
    """(N, K) class logits on the CPU where the extractor is a classifier (Inception Score needs them)."""
    labels: Any = None
    """(N,) int64 class labels of the images where they have them: a labelled dataset's, or the classes a conditional
    generator was asked for (class accuracy and per-class FID need them)."""


@dataclass(frozen=True)
class ExtractorContext:
    """What a feature extractor's factory is told."""

    device: Any
    cache_dir: Any
    """A folder (pathlib.Path) of its own in the user's cache, for weights it trains or converts."""
    data: DataSource | None = None
    """The reference dataset, where the reference is one (a classifier trains on its labels)."""
    data_key: str | None = None
    """A text naming that dataset with its parameters and size, for cache keys."""
    seed: int = 0


def _is_uint8(samples: Any) -> bool:
    return str(getattr(samples, "dtype", "")) == "torch.uint8"  # no torch import: this module is imported early


def to_values(samples: Any, value_range: tuple[float, float] | None) -> Any:
    """Samples as the networks take them: uint8 images (0 to 255) mapped linearly onto `value_range`, floats as
    they are. Datasets may keep images as uint8 (4x less memory than float32); the engine converts each batch
    on its device."""
    if not _is_uint8(samples):
        return samples
    lo, hi = value_range if value_range is not None else (0.0, 255.0)
    return samples.float().div_(255 / (hi - lo)).add_(lo)  # x / 127.5 - 1 for [-1, 1]: what datasets computed before


def to_unit(images: Any, value_range: tuple[float, float] | None) -> Any:
    """Images (N, C, H, W) in a value range (or uint8, 0 to 255) as floats in [0, 1], what feature extractors take."""
    if images.ndim != 4:
        raise IncompatibleError(f"image metrics need images (N, C, H, W); these samples have shape "
                                f"{tuple(images.shape)}")
    if _is_uint8(images):
        return images.float() / 255
    lo, hi = value_range if value_range is not None else (float(images.min()), float(images.max()))
    return ((images.float() - lo) / (hi - lo)).clamp(0, 1)


@dataclass(frozen=True, kw_only=True)
class Extractor(Component):
    """A feature extractor for image metrics (`--extractor NAME`, `-p extractor.PARAM=VALUE`).

    factory(params, ExtractorContext) -> an object with `extract(images) -> {"features": (N, D), "logits":
    (N, K) or absent}` for float images (N, C, H, W) in [0, 1] on the context's device, a `protocol` dict
    (what the numbers were measured with: network, input size, resizing) and a `cache_key` text naming the
    network and its weights. Raise IncompatibleError where it cannot apply, UserError for a missing file.
    """

    kind: ClassVar[str] = "extractor"
    factory: Callable[[Any, ExtractorContext], Any]


@dataclass(frozen=True, kw_only=True)
class Augment(Component):
    """A differentiable augmentation of everything the discriminator judges, real and generated alike
    (`--augment NAME`, `-p augment.PARAM=VALUE`; Zhao et al. 2020, Karras et al. 2020).

    factory(params, NetworkSpec) -> a `torch.nn.Module` whose `forward(x)` returns `x` augmented, same shape,
    differentiable in `x` (the generator learns through it); it has no parameters, and its buffers are
    checkpointed, so an adaptive strength resumes exactly. Optional methods: `observe_real(scores)`, called with the discriminator's raw
    scores (detached, on the device) each time it judges an augmented real batch in a phase that trains it (a
    call on the step's real batch tensor itself, or a view of it: a real batch concatenated with a fake one is
    not recognised); `end_step(step)`, called
    after each training step, returning None or a dict of scalar tensors to log (e.g. `{"augment/p": p}`).
    Neither may read values to the host (no `.item()`): they run every step. Raise IncompatibleError where it
    cannot apply (samples that are not images, a discriminator of latent codes).
    """

    kind: ClassVar[str] = "augment"
    factory: Callable[[Any, NetworkSpec], Any]


@dataclass(frozen=True, kw_only=True)
class Callback(Component):
    """Something the trainer calls at its events (run start, step end, epoch end, log, save, run end).

    factory(params) -> an object with any of the methods of `gan_registry.CallbackProtocol`. An
    `always` callback is part of every run (sample grids, checkpoints, the log); others are added
    with `gan run --callback NAME`.
    """

    kind: ClassVar[str] = "callback"
    factory: Callable[[Any], Any]
    always: bool = False
    order: int = 100
    """Callbacks run in ascending order at each event (ties by name)."""
    logger: bool = False
    """A logger: `gan run --log NAME` adds it (the JSONL log is always on; `gan list callbacks` marks loggers)."""
    every_rank: bool = False
    """Called in every process of a distributed run: it takes part in collectives, or keeps state each rank needs
    (the generator average). False: called on rank 0 alone, the one process that writes the run folder."""


@dataclass(frozen=True)
class Kind:
    """One kind of component: the single place that names its class, hook, flag and docs text."""

    name: str
    plural: str
    component: type
    hook: str
    """The hook that registers it; several kinds may share one."""
    flag: str
    """`--FLAG NAME` picks one for a run and `-p FLAG.PARAM=VALUE` sets its parameters."""
    summary: str


KINDS: tuple[Kind, ...] = (
    Kind("architecture", "architectures", Architecture, "register_architectures", "arch",
         "presets naming the generator, discriminator (and encoder) used together"),
    Kind("generator", "generators", Generator, "register_architectures", "generator",
         "networks mapping a noise batch (N, latent_dim) to samples (N, *sample_shape)"),
    Kind("discriminator", "discriminators", Discriminator, "register_architectures", "discriminator",
         "networks mapping a batch of samples (or codes) to one raw score per sample"),
    Kind("encoder", "encoders", Encoder, "register_architectures", "encoder",
         "networks mapping samples to latent codes (adversarial autoencoders)"),
    Kind("objective", "objectives", Objective, "register_objectives", "objective",
         "losses, optimisers and their schedule, as a list of training phases"),
    Kind("dataset", "datasets", Dataset, "register_datasets", "dataset",
         "data: sample shape, value range and a loader"),
    Kind("metric", "metrics", Metric, "register_metrics", "metric",
         "evaluations of generated samples (`gan eval`)"),
    Kind("extractor", "extractors", Extractor, "register_extractors", "extractor",
         "feature networks image metrics compare generated and real images in (Inception, a classifier)"),
    Kind("augment", "augments", Augment, "register_augments", "augment",
         "differentiable augmentations of what the discriminator sees, real and generated alike (DiffAugment)"),
    Kind("callback", "callbacks", Callback, "register_callbacks", "callback",
         "what the trainer does besides training: sample grids, checkpoints, logs, stopping"),
)
KIND_BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}
NETWORK_ROLES = tuple(k.name for k in KINDS if issubclass(k.component, _Network))
HOOKS: dict[str, tuple[str, ...]] = {}
"""hook name -> the kinds it registers, in table order."""
for _kind in KINDS:
    HOOKS.setdefault(_kind.hook, ())
    HOOKS[_kind.hook] += (_kind.name,)
del _kind


def kind_words() -> list[str]:
    """Every word `kind_named` understands, sorted."""
    return sorted({word for k in KINDS for word in (k.name, k.plural, k.flag)})


def kind_named(word: str) -> Kind | None:
    """The kind a user means by its name, plural or flag (`arch`, `architectures`, ...)."""
    for k in KINDS:
        if word in (k.name, k.plural, k.flag):
            return k
    return None
