"""Turning run settings into checked components, parameters and networks, before any training.

Layer: plan (docs/architecture.md).
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import os
from dataclasses import dataclass, field
from typing import Any

from . import _schedules, params as params_mod
from .params import in_group, spread_params
from ._components import (EMA_KEY, KINDS, NETWORK_ROLES, PRECISION_NAMES, DataContext, DataSource, NetworkSpec, Phase,
                          Scale, latent_sampler)
from ._registry import AmbiguousComponentError, Registry
from .errors import IncompatibleError, ParameterError, PluginFailure, UnknownComponentError, UserError
from .plugins import blame

# torch (~3 s) is imported inside the checks that build and run networks: `gan describe` loads this module and
# needs no torch.

PARAM_SLOTS = tuple(k.flag for k in KINDS)
"""The `-p SLOT.PARAM=VALUE` groups: one per kind (`arch` spreads over the architecture's pieces)."""


SCHEDULABLE_SETTINGS = ("ema_half_life",)
"""Run settings that take `schedule(START, END[, SHAPE[, STEPS]])` as well as a number."""

OPTIONAL_NAMES = ("generator", "discriminator", "encoder", "data_dir", "extractor", "augment")
"""Settings that name something, or are None to take the default."""


@dataclass
class Settings:
    """Everything `gan run` was asked for; stored in the run directory to resume from."""

    arch: str
    objective: str
    dataset: str = "digits"
    generator: str | None = None
    discriminator: str | None = None
    encoder: str | None = None
    epochs: int | None = None
    steps: int | None = None
    batch_size: int | None = None
    latent_dim: int | None = None
    lr_scale: float | None = None
    lr_decay_start: float | None = None
    data_dir: str | None = None
    image_size: int | None = None
    device: str = "auto"
    seed: int = 0
    sample_every: int | None = None
    log_every: int = 50
    keep: int = 1
    """Checkpoints kept: 1 keeps only last.pt; N > 1 also keeps step-N.pt files of the N newest saves."""
    callbacks: list[str] = field(default_factory=list)
    """Callbacks to add to the ones every run has (`gan run --callback NAME`)."""
    loggers: list[str] = field(default_factory=list)
    """Loggers to add to the JSONL log every run writes (`gan run --log tensorboard`)."""
    eval_every: int | None = None
    """Measure quality every N steps and at the end, keeping checkpoints/best.pt (`--eval-every`)."""
    eval_metrics: list[str] = field(default_factory=list)
    """Metrics of --eval-every (default: fid); the first one's first value picks best.pt."""
    eval_samples: int = 2000
    extractor: str | None = None
    """The feature extractor of image metrics (default: the dataset's own, else inception-v3)."""
    ema: float | None = None
    """Keep an exponential moving average of the generator with this decay per step (`--ema 0.999`)."""
    ema_half_life: int | _schedules.Schedule | None = None
    """The same as a half-life in images (StyleGAN2's ema_kimg): decay = 0.5 ** (batch_size / half_life); a
    schedule (`schedule(1000, 10000)`, or its text) moves it over the run, as R3GAN's recipe does."""
    ema_start: int = 0
    """Steps before the average starts: until then it is a copy of the generator."""
    augment: str | None = None
    """A differentiable augmentation of what the discriminator judges (`--augment diffaugment`)."""
    precision: str = "32"
    """32, bf16 or 16: autocast to bfloat16 or float16 (with a GradScaler per optimiser) in every phase's loss."""
    compile: bool = False
    """torch.compile the generator and discriminator (one that trains on input gradients runs eager)."""
    compile_backend: str = "inductor"
    """torch.compile's backend (`aot_eager` compiles fast and checks that a model traces)."""
    channels_last: bool | None = None
    """Conv nets and image batches in channels_last memory (None: on for image runs on CUDA)."""
    deterministic: bool = False
    """Deterministic kernels only (CUDA runs then resume bit-exact too); off: cuDNN autotunes convolutions."""
    conditional: bool = False
    """Condition the generator and discriminator on the dataset's class labels (`--conditional`)."""
    sync_bn: bool | None = None
    """Distributed runs: BatchNorm statistics of the global batch (None, the default, or True) or of each rank's
    share (False: `--no-sync-bn`, DistributedDataParallel's way; the statistics are then averaged each step)."""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("arch", "objective", "dataset", "device", "precision", "generator", "discriminator", "encoder",
                     "data_dir", "extractor", "augment"):
            value = getattr(self, name)
            if not (isinstance(value, str) or value is None and name in OPTIONAL_NAMES):
                raise UserError(f"{name} must be a name (a string), got {value!r}")
        if self.data_dir:  # stored in the run directory: resuming from elsewhere must find the same files
            self.data_dir = os.path.abspath(os.path.expanduser(self.data_dir))
        if self.epochs is not None and self.steps is not None:
            raise UserError("give --epochs or --steps, not both")
        self._check_scheduled_settings()
        for name in ("epochs", "steps", "batch_size", "latent_dim", "image_size", "sample_every", "log_every", "keep",
                     "seed", "eval_every", "eval_samples", "ema_half_life", "ema_start"):
            value = getattr(self, name)
            if isinstance(value, _schedules.Schedule):
                continue  # checked above, both ends
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise UserError(f"--{name.replace('_', '-')} must be an integer, got {value!r}")
            least = {"batch_size": 2, "seed": 0, "ema_start": 0}.get(name, 1)  # a batch of one has nothing to normalise over
            if value is not None and value < least:
                raise UserError(f"--{name.replace('_', '-')} must be at least {least}, got {value}")
            if value is not None and value >= 2**63:  # what a checkpoint and torch's generators hold
                raise UserError(f"--{name.replace('_', '-')} must be below 2**63, got {value}")
        for name in ("lr_scale", "lr_decay_start"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise UserError(f"--{name.replace('_', '-')} must be a finite number, got {value!r}")
        if self.ema is not None:
            if isinstance(self.ema, bool) or not isinstance(self.ema, (int, float)) or not 0 <= self.ema < 1:
                raise UserError(f"--ema is a decay per step between 0 and 1 (e.g. 0.999; 0: no average), got "
                                f"{self.ema!r}; for a half-life in images use --ema-half-life")
            if self.ema_half_life is not None:
                raise UserError("give --ema or --ema-half-life, not both: they set the same decay")
        if self.precision not in PRECISION_NAMES:
            raise UserError(f"--precision must be one of {', '.join(PRECISION_NAMES)}, got {self.precision!r}")
        for name, allowed in (("compile", (bool,)), ("deterministic", (bool,)), ("conditional", (bool,)),
                              ("channels_last", (bool, type(None))), ("sync_bn", (bool, type(None))),
                              ("compile_backend", (str,))):
            if not isinstance(getattr(self, name), allowed):
                raise UserError(f"{name} must be {' or '.join(t.__name__ for t in allowed)}, got {getattr(self, name)!r}")
        if self.lr_scale is not None and not self.lr_scale > 0:
            raise UserError(f"--lr-scale must be positive, got {self.lr_scale}")
        if self.lr_decay_start is not None and not 0 <= self.lr_decay_start <= 1:
            raise UserError(f"--lr-decay-start is a fraction of the run, from 0 to 1; got {self.lr_decay_start}")
        for listed in ("callbacks", "loggers"):
            names = getattr(self, listed)
            if not (isinstance(names, (list, tuple)) and all(isinstance(c, str) for c in names)):
                raise UserError(f"{listed} must be a list of {listed[:-1]} names, got {names!r}")
            setattr(self, listed, list(names))
        if not (isinstance(self.eval_metrics, (list, tuple)) and all(isinstance(m, str) for m in self.eval_metrics)):
            raise UserError(f"eval_metrics must be a list of metric names, got {self.eval_metrics!r}")
        self.eval_metrics = list(self.eval_metrics)
        if self.eval_every is None and (self.eval_metrics or self.extractor):
            raise UserError("--eval-metric and --extractor choose what --eval-every measures; give --eval-every STEPS")
        unknown = set(self.params) - set(PARAM_SLOTS)
        if unknown:
            raise ParameterError(
                f"unknown parameter group '{sorted(unknown)[0]}' (valid: {', '.join(PARAM_SLOTS)})"
            )

    def _check_scheduled_settings(self) -> None:
        """Settings that may be schedules: the text parsed, both ends at least 1 image."""
        for name in SCHEDULABLE_SETTINGS:
            value = getattr(self, name)
            try:
                schedule = _schedules.parse(value)
            except ValueError as error:
                raise UserError(f"--{name.replace('_', '-')}: {error}") from None
            if schedule is None:
                continue
            for end, number in (("START", schedule.start), ("END", schedule.end)):
                if not number >= 1:
                    raise UserError(f"--{name.replace('_', '-')} is at least 1 image at either end of its schedule; "
                                    f"{end} is {number:g}")
            setattr(self, name, schedule)

    def scheduled_settings(self) -> dict[str, _schedules.Schedule]:
        """{setting: its Schedule} of the settings that move over the run."""
        return {name: getattr(self, name) for name in SCHEDULABLE_SETTINGS
                if isinstance(getattr(self, name), _schedules.Schedule)}

    def as_dict(self) -> dict[str, Any]:
        """Plain values, as config.json and checkpoints hold them: a schedule as its text."""
        values = dataclasses.asdict(self)
        values.update((name, str(schedule)) for name, schedule in self.scheduled_settings().items())
        return values

    @property
    def ema_decay_given(self) -> float | int | None:
        """--ema or --ema-half-life where the run averages its generator; None where not (`--ema 0` is off)."""
        return (self.ema or None) if self.ema is not None else self.ema_half_life

    def ema_decay(self) -> float | None:
        """The generator average's decay per step, or None without one (needs the batch size set)."""
        if self.ema is not None:
            return float(self.ema)
        if self.ema_half_life is not None:
            return 0.5 ** ((self.batch_size or 1) / self.ema_half_life)
        return None




RUN_FLAG_ALIASES = {"eval_metric": "eval_metrics", "callback": "callbacks", "log": "loggers"}
"""`gan run`'s repeatable flags under their own names, which a settings file may use too (a text for one name, a
list for several)."""
NEGATABLE_SETTINGS = ("channels_last", "sync_bn")
"""On/off settings whose `gan run` flag has a `--no-` form: off is said, not left to the default."""


def settings_from_table(data: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(settings, params) of a settings file's table: its keys are `gan run`'s flags (dashes or underscores) and a
    `[params.KIND]` table per `-p` group. An unknown key is refused, naming `where`."""
    known = {f.name for f in dataclasses.fields(Settings)} - {"params"}
    values: dict[str, Any] = {}
    params: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name in RUN_FLAG_ALIASES:
            name, value = RUN_FLAG_ALIASES[name], [value] if isinstance(value, str) else value
        if name == "params":
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                raise UserError(f"{where}: [params.KIND] tables expected")
            params = {slot: dict(table) for slot, table in value.items()}
        elif name in known:
            values[name] = value
        else:
            raise UserError(f"{where}: unknown key '{key}' (valid: {', '.join(sorted(known))}, params)")
    return values, params


def _flag_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def run_flags(values: dict[str, Any], params: dict[str, dict[str, Any]]) -> list[str]:
    """The `gan run` arguments that set these settings and parameters: `settings_from_table` the other way."""
    flag_of = {name: flag for flag, name in RUN_FLAG_ALIASES.items()}
    argv: list[str] = []
    for name, value in values.items():
        flag = "--" + flag_of.get(name, name).replace("_", "-")
        if isinstance(value, bool):
            argv += [flag] if value else ["--no-" + flag[2:]] if name in NEGATABLE_SETTINGS else []
        elif isinstance(value, (list, tuple)):
            argv += [part for item in value for part in (flag, _flag_text(item))]
        elif value is not None:
            argv += [flag, _flag_text(value)]
    return argv + [part for slot, table in params.items() for name, value in table.items()
                   for part in ("-p", f"{slot}.{name}={_flag_text(value)}")]


@dataclass
class Plan:
    """A checked combination: the components chosen, their parameters and the data description."""

    settings: Settings
    pieces: dict[str, Any]  # role -> Generator/Discriminator/Encoder component
    objective: Any
    dataset: Any
    params: dict[str, Any]  # slot -> params dataclass instance (generator, discriminator, ...)
    data: DataSource
    spec: NetworkSpec
    architecture: Any
    suggested: dict[str, Any] = field(default_factory=dict)
    """The suggestions this run took (where the user set nothing), of its dataset, architecture or objective."""
    callbacks: list[tuple[Any, Any]] = field(default_factory=list)
    """(callback component, its params), in the order they run."""
    evaluator: Any = None
    """What `--eval-every` measures (an evaluation.Evaluator), for runs that evaluate while training."""
    augment: Any = None
    """The augment component of `--augment` (its params are `params["augment"]`), else None."""
    defaults_from: dict[str, str] = field(default_factory=dict)
    """Each setting the user did not give: which component suggested it, or the engine's default
    (DEFAULTS_PRECEDENCE). Kept in the run's config.json."""

    def build_augment(self, device: Any = "cpu") -> Any:
        """The augmentation module of `--augment`, or None; IncompatibleError where it does not fit."""
        if self.augment is None:
            return None
        import torch

        component = self.augment
        try:
            with blame(component, "building the augmentation"):
                module = component.factory(self.params["augment"], self.spec)
        except IncompatibleError as error:
            raise IncompatibleError(f"augment '{component.name}' does not fit this run (dataset '{self.dataset.name}',"
                                    f" sample shape {tuple(self.spec.sample_shape)}): {error}") from None
        if not isinstance(module, torch.nn.Module):
            raise PluginFailure(f"augment '{component.name}' from {component.origin} broke its contract: its factory "
                                f"returned {type(module).__name__}, not a torch.nn.Module")
        if any(True for _ in module.parameters()):
            raise PluginFailure(f"augment '{component.name}' from {component.origin} broke its contract: it has "
                                "trainable parameters, which no optimiser would own; keep its state in buffers")
        return module.to(device)

    def build_callbacks(self) -> list[Any]:
        built = []
        for component, params in self.callbacks:
            with blame(component, "building the callback"):
                built.append(component.factory(params))
        return built

    @property
    def latent_dim(self) -> int:
        return self.spec.latent_dim

    @property
    def classes(self) -> tuple[str, ...] | None:
        """The class names a conditional run's labels refer to; None for an unconditional run."""
        return tuple(self.data.classes) if self.spec.num_classes else None

    def class_frequencies(self) -> Any:
        """How often each class occurs in the training data: what generated samples' labels are drawn with."""
        from ._conditioning import class_frequencies

        return class_frequencies(self.load_labels(), self.spec.num_classes)

    def component_record(self) -> dict[str, Any]:
        """Names, parameters and plugin versions of every component, for the run directory."""
        record = {}
        slots = {"architecture": self.architecture, **self.pieces, "objective": self.objective,
                 "dataset": self.dataset}
        if self.augment is not None:
            slots["augment"] = self.augment
        for slot, component in slots.items():
            origin = component.origin
            record[slot] = {
                "name": component.name,
                "params": params_mod.as_dict(self.params.get(slot)),
                "plugin": origin.plugin if origin else None,
                "distribution": origin.distribution if origin else None,
                "version": origin.version if origin else None,
            }
        return record

    def _asked(self, role: str) -> str:
        """The sizes the run set for a piece, where they differ from its defaults: what a failed build names."""
        params = self.params.get(role)
        defaults = self.pieces[role].default_params()
        fields = dataclasses.fields(params) if dataclasses.is_dataclass(params) and type(params) is type(defaults) else ()
        asked = [f"{f.name}={getattr(params, f.name)}" for f in fields if getattr(params, f.name) != getattr(defaults, f.name)]
        if self.settings.latent_dim is not None and "latent_dim" not in self.suggested:
            asked.append(f"--latent-dim {self.settings.latent_dim}")
        return ", ".join(asked)

    def build_networks(self, device: Any = "cpu") -> dict[str, Any]:
        """Build each piece for this spec; a piece that cannot comply raises IncompatibleError."""
        networks = {}
        for role, component in self.pieces.items():
            try:
                with blame(component, f"building the {role}", asked=self._asked(role)):
                    module = component.factory(self.params[role], self.spec)
            except IncompatibleError as error:
                raise IncompatibleError(
                    f"{role} '{component.name}' does not fit this run "
                    f"(objective '{self.objective.name}', dataset '{self.dataset.name}', "
                    f"sample shape {tuple(self.spec.sample_shape)}): {error}"
                ) from None
            networks[role] = module.to(device)
        if self.settings.ema_decay_given is not None:
            networks[EMA_KEY] = copy.deepcopy(networks["generator"]).requires_grad_(False)
        return networks

    def check(self) -> None:
        """Build the networks and the objective once, on the CPU, and try them on two samples.

        Every misfit a component can detect raises here, before any folder is made or step is trained: an
        IncompatibleError for a combination that does not fit, a PluginFailure for a component that breaks
        its contract. The caller's random states are left as they were.
        """
        import torch

        from .checkpoint import rng_state, set_rng_state

        saved = rng_state()
        try:
            networks = torch.nn.ModuleDict(self.build_networks("cpu")).eval()
            objective = self.build_objective()
            self.build_phases(objective, torch.nn.ModuleDict({role: networks[role] for role in self.pieces}))
            self.build_augment("cpu")
            with blame(self.objective, "drawing latent codes"):
                z = latent_sampler(objective)(2, self.latent_dim, "cpu")
            with torch.no_grad():
                self._check_outputs(networks, z)
        finally:
            set_rng_state(saved)

    def _check_outputs(self, networks: Any, z: Any) -> None:
        import torch

        generator, discriminator = self.pieces["generator"], self.pieces["discriminator"]
        labels = None if self.spec.num_classes is None else torch.tensor([0, self.spec.num_classes - 1])
        condition = () if labels is None else (labels,)
        with blame(generator, "generating two samples"):
            samples = networks["generator"](z, *condition)
        _require_tensor(generator, samples, "samples")
        expected = (2, *self.spec.sample_shape)
        if tuple(samples.shape) != expected:
            raise PluginFailure(f"generator '{generator.name}' from {generator.origin} broke its contract: it made "
                                f"samples of shape {tuple(samples.shape)} from 2 noise vectors; {expected} expected")
        if self.spec.value_range is not None:
            lo, hi = self.spec.value_range
            if not bool(((samples >= lo - 1e-4) & (samples <= hi + 1e-4)).all()):
                raise PluginFailure(
                    f"generator '{generator.name}' from {generator.origin} broke its contract: its samples lie in "
                    f"[{samples.min().item():.3g}, {samples.max().item():.3g}], outside the data's range [{lo}, {hi}]"
                )
        judged = z if self.spec.needs.discriminator_input == "latent" else samples
        with blame(discriminator, "scoring two samples"):
            scores = networks["discriminator"](judged, *condition)
        if labels is not None:
            scores = self._check_conditioned(networks, z, samples, labels, scores)
        _require_tensor(discriminator, scores, "scores")
        if tuple(scores.shape) not in ((2,), (2, 1)):
            raise PluginFailure(f"discriminator '{discriminator.name}' from {discriminator.origin} broke its "
                                f"contract: it scored 2 inputs with shape {tuple(scores.shape)}; (2,) or (2, 1)"
                                " expected, one raw score per sample")

    def _check_conditioned(self, networks: Any, z: Any, samples: Any, labels: Any, scores: Any) -> Any:
        """A conditional piece must use its labels: the same noise (or sample) under two labels differs."""
        import torch

        generator, discriminator = self.pieces["generator"], self.pieces["discriminator"]
        twice = z[:1].expand(2, *z.shape[1:])
        with blame(generator, "generating a sample under two labels"):
            pair = networks["generator"](twice, labels)
        if torch.equal(pair[0], pair[1]):
            raise PluginFailure(f"generator '{generator.name}' from {generator.origin} broke its contract: it is "
                                "registered conditional=True, and the same noise under two labels made the same sample")
        if isinstance(scores, tuple):  # (scores, auxiliary loss): a classifier's loss carries the class
            if len(scores) != 2 or not isinstance(scores[1], torch.Tensor) or scores[1].ndim != 0:
                raise PluginFailure(f"discriminator '{discriminator.name}' from {discriminator.origin} broke its "
                                    "contract: a conditional discriminator returns scores, or (scores, a scalar loss)")
            return scores[0]
        same = samples[:1].expand(2, *samples.shape[1:])
        with blame(discriminator, "scoring a sample under two labels"):
            pair = networks["discriminator"](same, labels)
        if torch.equal(pair.reshape(-1)[0], pair.reshape(-1)[1]):
            raise PluginFailure(f"discriminator '{discriminator.name}' from {discriminator.origin} broke its contract: "
                                "it is registered conditional=True, and it scored one sample the same under two labels")
        return scores

    def build_objective(self) -> Any:
        with blame(self.objective, "building the objective"):
            return self.objective.factory(self.params["objective"])

    def build_phases(self, objective: Any, networks: Any) -> list[Any]:
        """The built objective's phases for these networks, checked: a non-empty list of distinct Phase."""
        with blame(self.objective, "making its training phases"):
            phases = objective.phases(networks)
        check_phases(self.objective, phases)
        return phases

    def load_labels(self, heldout: bool = False) -> Any:
        """The labels of `load_data(heldout)`'s samples, or None for unlabelled data."""
        load = self.data.load_heldout_labels if heldout and self.data.load_heldout else self.data.load_labels
        if load is None:
            return None
        with blame(self.dataset, "loading its labels"):
            return load()

    def load_data(self, heldout: bool = False) -> Any:
        """The dataset's samples (its held-out ones if asked and it has them)."""
        load = self.data.load_heldout if heldout and self.data.load_heldout else self.data.load
        with blame(self.dataset, "loading its data"):
            return load()


def _require_tensor(component: Any, value: Any, what: str) -> None:
    import torch

    if not isinstance(value, torch.Tensor):
        raise PluginFailure(f"{component.kind} '{component.name}' from {component.origin} broke its contract: it"
                            f" returned {type(value).__name__} for its {what}, not a tensor")


def check_phases(objective: Any, phases: Any) -> None:
    """An objective's phases: a non-empty list of Phase with distinct names."""
    where = f"objective '{objective.name}' from {objective.origin} broke its contract:"
    if not isinstance(phases, (list, tuple)) or not phases or not all(isinstance(p, Phase) for p in phases):
        raise PluginFailure(f"{where} phases() must return a non-empty list of gan_registry.Phase, got {phases!r:.80}")
    names = [p.name for p in phases]
    if len(set(names)) != len(names):
        raise PluginFailure(f"{where} its phases need distinct names, got {names}")


def _callbacks(registry: Registry, settings: Settings) -> list[tuple[Any, Any]]:
    chosen = [c for c in registry.components("callback") if c.always]
    wanted = (settings.callbacks + (["evaluation@gan-registry"] if settings.eval_every else [])
              + (["generator-ema@gan-registry"] if settings.ema_decay_given is not None else []))
    for name in wanted + settings.loggers:
        component = _logger(registry, name) if name in settings.loggers else registry.get("callback", name)
        if component not in chosen:
            chosen.append(component)
    chosen.sort(key=lambda c: (c.order, c.name))
    spread = spread_params(settings.params.get("callback", {}), {c.name: c for c in chosen}, in_group("callback"))
    return [(c, params_mod.build(c.params, spread[c.name], f"callback '{c.name}'")) for c in chosen]


def _logger(registry: Registry, name: str) -> Any:
    """The callback `--log NAME` asks for, refused where it is unknown or not a logger."""
    loggers = ", ".join(sorted(c.name for c in registry.components("callback") if c.logger))
    try:
        component = registry.get("callback", name)
    except UnknownComponentError:
        close = difflib.get_close_matches(name, loggers.split(", "), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UnknownComponentError(f"unknown logger '{name}'{hint} (loggers: {loggers})") from None
    if not component.logger:
        hint = "" if component.always else f"; add it with --callback {name}"
        raise UserError(f"--log {name}: callback '{component.name}' is not a logger (loggers: {loggers}){hint}")
    return component


def _piece(registry: Registry, arch: Any, role: str, name: str) -> Any:
    """The piece an architecture names; where that name clashes, the one from the architecture's own plugin."""
    try:
        return registry.get(role, name)
    except AmbiguousComponentError:
        sibling = [c for c in registry.components(role) if c.name == name and c.origin == arch.origin]
        if sibling:
            return sibling[0]
        raise


def _take_suggestions(settings: Settings, sources: list[Any]) -> tuple[Settings, dict[str, Any], dict[str, str]]:
    """Settings with the suggestions filled in where the user set nothing, those taken, and which component each
    came from. `sources` come first-wins (DEFAULTS_PRECEDENCE); they are applied from the last, so that a source
    above overrides a value, or with a `Scale` takes a share of it."""
    given_length = settings.steps is not None or settings.epochs is not None
    taken: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for component in reversed(sources):
        who = f"{component.kind} '{component.name}'"
        for key, value in component.suggests.items():
            if "." in key:  # a component's parameter: _take_param_suggestions, once the components are chosen
                continue
            if getattr(settings, key) is not None:
                continue
            if key == "steps" and given_length:
                continue
            if key == "ema_half_life" and settings.ema is not None:  # --ema (0: off) says it all
                continue
            if isinstance(value, Scale):
                scaled = _scaled(key, value, taken, origin, who)
                if scaled is None:
                    continue
                key, value, source = scaled
            else:
                source = who
            taken[key], origin[key] = value, source
    return dataclasses.replace(settings, **taken), taken, origin


def _take_param_suggestions(settings: Settings, sources: list[Any], targets: dict[str, Any]
                            ) -> tuple[Settings, dict[str, Any], dict[str, str]]:
    """Settings whose `params` hold the suggested component parameters (e.g. a dataset's `objective.gp_weight`)
    where the user gave none and the chosen component has one, first source wins; stored with the run like `-p`,
    so that resuming trains with the same values."""
    params = {slot: dict(values) for slot, values in settings.params.items()}
    taken: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for component in sources:
        for key, value in component.suggests.items():
            slot, dot, name = key.partition(".")
            target = targets.get(slot)
            if not dot or target is None or name not in params_mod.fields_of(target.params):
                continue
            if name in params.get(slot, {}):  # the user's, or a source above
                continue
            params.setdefault(slot, {})[name] = value
            taken[key], origin[key] = value, f"{component.kind} '{component.name}'"
    if not taken:
        return settings, taken, origin
    return dataclasses.replace(settings, params=params), taken, origin


def _scaled(key: str, scale: Scale, taken: dict[str, Any], origin: dict[str, str],
            who: str) -> tuple[str, Any, str] | None:
    """(setting, value, source) of a Scale suggestion: a share of what the sources below chose, else of the engine's
    default. None where there is nothing to scale: a share of steps where none were suggested, since the engine's
    length is in epochs, and an epoch already counts every batch a critic step draws (100 epochs of five critic
    steps per generator step are a fifth of the generator steps)."""
    if key in taken:
        base, below = taken[key], origin[key]
        if isinstance(base, _schedules.Schedule):
            ends = [scale.of(end, whole=key in WHOLE_SETTINGS) for end in (base.start, base.end)]
            return key, _schedules.Schedule(*ends, base.shape, base.steps), f"{who}, {scale} {below}"
    elif key in ENGINE_DEFAULTS:
        base, below = ENGINE_DEFAULTS[key], "the engine's default"
    else:
        return None
    return key, scale.of(base, whole=key in WHOLE_SETTINGS), f"{who}, {scale} {below}"


def _with_defaults(settings: Settings) -> tuple[Settings, dict[str, str]]:
    values: dict[str, Any] = {}
    if settings.batch_size is None:
        values["batch_size"] = DEFAULT_BATCH_SIZE
    if settings.steps is None and settings.epochs is None:
        values["epochs"] = DEFAULT_EPOCHS
    return dataclasses.replace(settings, **values), {key: "engine default" for key in values}


DEFAULT_BATCH_SIZE = 64
DEFAULT_EPOCHS = 100
ENGINE_DEFAULTS = {"batch_size": DEFAULT_BATCH_SIZE, "lr_scale": 1.0}
"""What a `Scale` suggestion takes a share of where no source below it set the value."""
WHOLE_SETTINGS = ("batch_size", "steps", "ema_half_life")


def make_plan(registry: Registry, settings: Settings, *, take_suggestions: bool = True,
              for_training: bool = True) -> Plan:
    """Check the chosen components fit; settings come back complete (suggestions and defaults filled in).

    A run's settings are fixed when it starts: rebuilding it (resume, sample, eval) takes no suggestions.
    """
    arch = registry.get("architecture", settings.arch)
    pieces = {role: _piece(registry, arch, role, name) for role, name in arch.pieces().items()}
    for role in NETWORK_ROLES:
        override = getattr(settings, role)
        if override:
            pieces[role] = registry.get(role, override)
    objective = registry.get("objective", settings.objective)
    dataset = registry.get("dataset", settings.dataset)
    settings, suggested, defaults_from = (_take_suggestions(settings, [dataset, objective, arch]) if take_suggestions
                                          else (settings, {}, {}))
    settings, engine_defaults = _with_defaults(settings)
    defaults_from.update(engine_defaults)
    if take_suggestions and settings.latent_dim is None:
        defaults_from["latent_dim"] = f"architecture '{arch.name}' (its latent_dim)"
    if settings.ema_start and settings.ema_decay_given is None:
        raise UserError("--ema-start delays the generator average, and this run has none"
                        + (" (--ema 0 turns it off)" if settings.ema == 0 else "; give --ema or --ema-half-life too"))

    if take_suggestions:
        augment_component = registry.get("augment", settings.augment) if settings.augment else None
        settings, taken, origin = _take_param_suggestions(
            settings, [dataset, objective, arch], {"objective": objective, "augment": augment_component})
        suggested.update(taken)
        defaults_from.update(origin)
    given = settings.params
    for slot in given:
        if slot in NETWORK_ROLES and slot not in pieces:
            raise ParameterError(f"-p {slot}.*: architecture '{arch.name}' has no {slot}")
        if slot == "augment" and not settings.augment:
            raise ParameterError("-p augment.*: choose the augmentation too, e.g. --augment diffaugment")
        if slot in ("metric", "extractor") and not settings.eval_every:
            raise ParameterError(f"-p {slot}.*: set what `--eval-every` measures, or give it to "
                                 f"`gan eval -p {slot}.NAME=VALUE`")
    spread = spread_params(given.get("arch", {}), pieces,
                           lambda name, valid: f"architecture '{arch.name}' has no parameter '{name}' (valid: {valid})")
    params: dict[str, Any] = {}
    for role, component in pieces.items():
        values = {**spread[role], **given.get(role, {})}
        params[role] = params_mod.build(component.params, values, f"{role} '{component.name}'")
    params["objective"] = params_mod.build(objective.params, given.get("objective", {}), f"objective '{objective.name}'",
                                           moves=True)
    params["dataset"] = params_mod.build(dataset.params, given.get("dataset", {}), f"dataset '{dataset.name}'")

    needs = objective.needs_for(params["objective"])
    if needs.encoder and "encoder" not in pieces:
        with_encoder = [a.name for a in registry.components("architecture") if a.encoder]
        raise IncompatibleError(
            f"objective '{objective.name}' trains an encoder, and architecture '{arch.name}' has none"
            + (f" (architectures with an encoder: {', '.join(with_encoder)})" if with_encoder else "")
        )
    if "encoder" in pieces and not needs.encoder:
        training_encoders = [o.name for o in registry.components("objective") if o.needs_for(o.default_params()).encoder]
        raise IncompatibleError(
            f"architecture '{arch.name}' is an encoder/decoder pair, and objective '{objective.name}' "
            "does not train an encoder"
            + (f"; use --objective {' or '.join(training_encoders)}" if training_encoders else "")
        )

    context = DataContext(data_dir=settings.data_dir, image_size=settings.image_size, registry=registry)
    with blame(dataset, "describing its data"):
        data = dataset.factory(params["dataset"], context)
    latent = settings.latent_dim or arch.latent_dim
    num_classes = _conditioning(registry, settings, pieces, objective, needs, dataset, data)
    spec = NetworkSpec(tuple(data.sample_shape), latent, data.value_range, needs, num_classes)
    # Sampling or evaluating a run needs none of its callbacks, which may no longer be installed.
    # Like callbacks, an augmentation only trains: sampling or evaluating a run needs it not installed.
    augment = registry.get("augment", settings.augment) if settings.augment and for_training else None
    if augment is not None:
        params["augment"] = params_mod.build(augment.params, given.get("augment", {}), f"augment '{augment.name}'",
                                             moves=True)
    plan = Plan(settings, pieces, objective, dataset, params, data, spec, arch, suggested,
                _callbacks(registry, settings) if for_training else [], augment=augment, defaults_from=defaults_from)
    plan.check()
    return plan


def _conditioning(registry: Registry, settings: Settings, pieces: dict[str, Any], objective: Any, needs: Any,
                  dataset: Any, data: DataSource) -> int | None:
    """The number of classes a `--conditional` run conditions on, once the data and every piece can."""
    if not settings.conditional:
        return None
    if not data.classes or data.load_labels is None:
        raise IncompatibleError(f"--conditional conditions on class labels, and dataset '{dataset.name}' has none;"
                                " use a labelled dataset (digits, mnist, fashion-mnist, cifar10, a folder of class"
                                " folders)")
    if needs.encoder or needs.discriminator_input == "latent":
        raise IncompatibleError(f"--conditional: objective '{objective.name}' judges latent codes, not samples of a "
                                "class; conditioning is for generators of samples")
    for role in ("generator", "discriminator"):
        if not pieces[role].conditional:
            able = sorted({c.name for c in registry.components(role) if c.conditional})
            archs = sorted(a.name for a in registry.components("architecture") if architecture_conditions(registry, a))
            raise IncompatibleError(
                f"--conditional: {role} '{pieces[role].name}' cannot condition on labels"
                + (f" (conditional {role}s: {', '.join(able)})" if able else "")
                + (f"; architectures that condition: {', '.join(archs)}" if archs else ""))
    return len(data.classes)


def architecture_conditions(registry: Registry, arch: Any) -> bool:
    """Whether both of an architecture's pieces can condition on labels (false where one is not installed)."""
    try:
        return all(_piece(registry, arch, role, arch.pieces()[role]).conditional for role in ("generator", "discriminator"))
    except UserError:
        return False
