"""The Python API: what `gan run`, `gan resume`, `gan sample`, `gan eval` and `gan export` do, from a script.

    import gan_registry as gr

    run = gr.Run.new(arch="mlp", objective="gan", dataset="gaussians", steps=2000, out="runs/ring")
    run.train()
    points = run.sample(2500)
    print(run.evaluate()["metrics"])
    run.train(steps=4000)                 # carry on to a new total
    gr.Run.open("runs/ring").export("ring.safetensors")

Names and parameters are the command line's; a mistake raises `gan_registry.UserError` with the message the
command line prints.

Layer: api (docs/architecture.md).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from . import _runlock, _threads
from .errors import UserError

# The engine (torch: ~3 s) and plugin loading (importlib.metadata: ~25 ms) are imported inside the methods that use
# them: `import gan_registry`, every plugin and `gan --help` load this module, and start without them.


def load_plugins(env: dict[str, str] | None = None):
    """Every installed plugin, loaded into a `Registry` (what each `gan` command starts with)."""
    from .plugins import load_registry

    return load_registry(env=env)


class Run:
    """One training run and its folder: train it, continue it, and use what it learned."""

    def __init__(self, registry: Any, plan: Any, run_dir: Path, *, started: bool, progress: bool) -> None:
        self._registry, self._plan, self._started, self._progress = registry, plan, started, progress
        self.dir = Path(run_dir)
        self._default_dir = False
        self._trainer: Any = None

    # -- making one ----------------------------------------------------------------------
    @classmethod
    def new(cls, arch: str, objective: str, dataset: str | None = None, *, out: str | Path | None = None,
            params: dict[str, dict[str, Any]] | None = None, registry: Any = None, progress: bool = False,
            **settings: Any) -> Run:
        """Check a combination and pick its folder; nothing is written or trained until `train()`.

        `settings` are the `gan run` flags with underscores (`steps`, `batch_size`, `latent_dim`, `seed`,
        `image_size`, `data_dir`, `device`, `lr_scale`, ...); `params` maps a `-p` group to its parameters,
        e.g. `{"objective": {"label_smoothing": 0.1}, "arch": {"hidden": 256}}`.
        """
        from ._plan import Settings

        known = {f.name for f in dataclasses.fields(Settings)} - {"arch", "objective", "dataset", "params"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise UserError(f"unknown setting '{unknown[0]}' (valid: {', '.join(sorted(known))})")
        values = {"arch": arch, "objective": objective, "params": params or {}, **settings}
        if dataset is not None:
            values["dataset"] = dataset
        return cls.from_settings(Settings(**values), out=out, registry=registry, progress=progress)

    @classmethod
    def from_settings(cls, settings: Any, *, out: str | Path | None = None, registry: Any = None,
                      progress: bool = False) -> Run:
        """`new`, from the settings object `gan run` builds of its flags and `--config` file."""
        from ._plan import make_plan
        from .runs import check_new_run_dir, default_run_dir

        from ._distributed import join
        from .training import resolve_device

        registry = registry if registry is not None else load_plugins()
        plan = make_plan(registry, settings)
        _choose_evaluator(registry, plan)
        world, _ = join(resolve_device(plan.settings.device))

        def choose() -> Path:  # in a distributed run rank 0 names and checks the folder for all
            chosen = Path(out) if out is not None else default_run_dir(plan.settings)
            check_new_run_dir(chosen)
            return chosen

        run_dir = world.decide(choose)
        run = cls(registry, plan, run_dir, started=False, progress=progress)
        run._default_dir = out is None
        return run

    @classmethod
    def open(cls, run_dir: str | Path, *, registry: Any = None, progress: bool = False) -> Run:
        """A run that exists on disk, as its `config.json` and last checkpoint describe it."""
        from .runs import plan_for_run

        registry = registry if registry is not None else load_plugins()
        plan, _ = plan_for_run(registry, Path(run_dir), for_training=False)  # training reopens it fully
        return cls(registry, plan, Path(run_dir), started=True, progress=progress)

    # -- training ------------------------------------------------------------------------
    def train(self, steps: int | None = None, epochs: int | None = None, *, device: str | None = None,
              threads: int | None = None) -> Run:
        """Train to the run's length, or to a new total of `steps` or `epochs`; returns the run.

        `device` moves a run opened from disk to another device (`cpu`, `cuda`, ...); `threads` sets torch's CPU
        threads (default: this machine's free share of its cores; a resumed run keeps the count it started with).
        """
        from . import runs

        if steps is not None and epochs is not None:
            raise UserError("give steps or epochs, not both")
        if not self._started and self._default_dir:  # another run took this second's name meanwhile
            from ._distributed import current

            self.dir = current().decide(
                lambda: runs.default_run_dir(self._plan.settings) if self.dir.exists() else self.dir)
        recorded = None
        if self._started:
            recorded = (runs.read_config(self.dir).get("threads") or {}).get("count")
        _threads.use(threads, recorded if isinstance(recorded, int) and not isinstance(recorded, bool) else None)
        with runs.writing(self.dir):
            return self._train(steps, epochs, device)

    def _train(self, steps: int | None, epochs: int | None, device: str | None) -> Run:
        from . import runs

        if not self._started:
            changes: dict[str, Any] = {"steps": steps, "epochs": epochs} if steps or epochs else {}
            if device is not None:
                changes["device"] = device
            if changes:
                self._plan.settings = dataclasses.replace(self._plan.settings, **changes)
            trainer = _begin(self._plan, self.dir, self._progress)
            try:
                _train_new(trainer)
            except BaseException:
                if trainer.saved_step is not None:  # a checkpoint exists: go on from it next time
                    self._started = True
                raise
            self._trainer, self._started = trainer, True
            return self
        if self._trainer is not None and device is not None:
            self._trainer = None  # its last checkpoint is where it stands: reopen it on the other device
        if self._trainer is None:
            self._trainer = _reopen(self._registry, self.dir, steps=steps, epochs=epochs, device=device,
                                    progress=self._progress)
        else:  # trained in this process already: go on from where it is, as a resume would
            if steps is not None or epochs is not None:
                settings = dataclasses.replace(self._trainer.plan.settings, steps=steps, epochs=epochs)
                self._trainer.plan.settings = settings
            _check_more_to_do(self._trainer)
            runs.write_config(self.dir, self._trainer.plan, self._trainer.world, self._trainer.step)
        s = self._trainer.plan.settings
        try:
            self._trainer.train(max_steps=s.steps, max_epochs=s.epochs)
        except BaseException:
            self._trainer = None  # the next train() goes on from the last checkpoint, as `gan resume` would
            raise
        return self

    # -- what it learned -------------------------------------------------------------------
    @property
    def step(self) -> int:
        """Generator steps trained (by this process, or as of the last checkpoint)."""
        if self._trainer is not None:
            return self._trainer.step
        return self.checkpoint()["step"] if self._started else 0

    @property
    def settings(self) -> dict[str, Any]:
        """Every setting of the run, with the dataset's suggestions and the defaults filled in."""
        plan = self._trainer.plan if self._trainer is not None else self._plan
        return plan.settings.as_dict()

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / "checkpoints" / "last.pt"

    def checkpoint(self) -> dict[str, Any]:
        """The last checkpoint's contents: `step`, `models` (state dicts), `optimizers`, `data`, `rng`, ..."""
        from . import checkpoint

        return checkpoint.load(self.checkpoint_path)

    def networks(self) -> dict[str, Any]:
        """The networks with the last checkpoint's weights, in eval mode: `generator`, `discriminator`, ..."""
        from .runs import load_networks

        return load_networks(self._registry, self.dir)[1]

    def sample(self, n: int | None = None, seed: int = 0, out: str | Path | None = None,
               classes: tuple[str, ...] = (), *, truncation: float | None = None, interpolate: bool = False,
               interpolate_steps: int | None = None) -> Any:
        """`n` samples (a tensor in the data's value range; default 64, or 8 of each class a conditional run draws);
        with `out` also written as `gan sample` writes. A conditional run draws the `classes` named (names or
        indices, as `gan sample --class`), else a row of each.

        `truncation` (psi > 0) draws them with the truncation trick, as `gan sample --truncation`; `interpolate`
        draws walks between latent points instead, as `gan sample --interpolate`: a (rows, steps, ...) tensor (for
        an `out` ending in .gif, the animation's (frames, walkers, ...))."""
        from . import generate, pictures

        classes = (classes,) if isinstance(classes, (str, int)) else classes
        classes = tuple(str(c) for c in classes)
        if interpolate:
            out = None if out is None else Path(out)
            return pictures.walk(self._registry, self.dir, n, seed, out, classes, interpolate_steps, truncation).samples
        if interpolate_steps is not None:
            raise UserError("interpolate_steps sets the walk of interpolate=True")
        if out is not None:
            generate.sample(self._registry, self.dir, n, seed, Path(out), classes, truncation)
        return generate.samples_of(self._registry, self.dir, n, seed, classes, truncation=truncation).samples

    def evaluate(self, metrics: tuple[str, ...] | list[str] = (), samples: int = 2500, seed: int = 0,
                 params: dict[str, Any] | None = None) -> dict:
        """The metric plugins that apply (or those named) on `samples` generated samples; also RUN/eval.json.

        `params` go to every chosen metric that declares them, as `gan eval -p metric.NAME=VALUE` does.
        """
        from . import generate

        if samples < 1:
            raise UserError("samples must be at least 1")
        return generate.evaluate(self._registry, self.dir, tuple(metrics), samples, seed, params)

    def export(self, path: str | Path, *, force: bool = False, license: str | None = None) -> Path:
        """The generator as one `.safetensors` file, or a folder with its model card where `path` ends in / or has
        no suffix (see `gan export`); `license` is the card's."""
        return export_run(self._registry, self.dir, path, force, license)

    def __repr__(self) -> str:
        s = self._plan.settings
        return f"Run({str(self.dir)!r}, arch={s.arch!r}, objective={s.objective!r}, dataset={s.dataset!r})"


def export_run(registry: Any, run_dir: Path, out: str | Path, force: bool, license: str | None) -> Path:
    """`gan export`: a folder with the model card where `out` names one (`_share.is_folder_name`), else one file."""
    from . import _share, export  # torch (~3 s)

    if _share.is_folder_name(out):
        return _share.export_folder(registry, run_dir, Path(out), force=force, license=license)
    if license is not None:
        raise UserError("a license is stated in a model card: export to a folder (end -o with /) to give one")
    return export.export(registry, run_dir, Path(out), force=force)


class LoadedGenerator:
    """A generator loaded from a `gan export` folder or file (`load_generator`): `sample` draws from it, `module`
    is the `torch.nn.Module` itself (in eval mode, on the CPU)."""

    def __init__(self, loaded: Any, path: Path) -> None:
        self._loaded, self.path = loaded, path
        self.module = loaded.generator
        self.classes: tuple[str, ...] | None = loaded.classes
        """The class names of a conditional generator, else None."""
        self.sample_shape: tuple[int, ...] = loaded.sample_shape
        self.value_range: tuple[float, float] | None = loaded.value_range
        self.latent_dim: int = loaded.latent_dim

    def sample(self, n: int | None = None, seed: int = 0, classes: Any = (), truncation: float | None = None) -> Any:
        """`n` samples (a tensor in the data's value range), the same as `gan sample PATH -n N --seed SEED` draws:
        default 64, or 8 of each class of a conditional generator; `classes` (names or indices) picks them, and
        `truncation` (psi > 0) draws them with the truncation trick."""
        from . import generate

        classes = (classes,) if isinstance(classes, (str, int)) else classes
        if n is not None:
            generate.check_count("n", n)
        return generate.drawn_from(self._loaded, self.path, n, seed, tuple(str(c) for c in classes),
                                   truncation=truncation, flag="n").samples

    def __repr__(self) -> str:
        return f"LoadedGenerator({str(self.path)!r}, sample_shape={self.sample_shape}, classes={self.classes})"


def load_generator(path: str | Path, *, registry: Any = None) -> LoadedGenerator:
    """A generator written by `gan export`: a folder (whose weights, config.json and card must agree) or a
    .safetensors file. It needs the plugins that built it installed, and names the missing one with its
    distribution; nothing in the folder or file is code, and nothing is unpickled.

        import gan_registry as gr
        generator = gr.load_generator("model")
        samples = generator.sample(16, seed=0)
    """
    from . import export, generate  # torch (~3 s)

    path = Path(path)
    if not export.is_export(path):
        raise UserError(f"{path} is not a folder or .safetensors file written by `gan export`")
    return LoadedGenerator(generate.load_generator(registry or load_plugins(), path), path)


def matrix(dataset: Any = "digits", arch: Any = (), objective: Any = (), **options: Any) -> dict[str, Any]:
    """Train and measure every (architecture, objective) pair the plan accepts, as `gan matrix` does; the names
    are its flags' (`steps`, `out`, `workers`, `threads`, `samples`, `seed`, `metric`). Returns what matrix.json
    holds: `cells` (each with `status`, `metrics`, `fid_x_floor`, `cpu_minutes`, `wall_s`, `run`) and `floors`."""
    from . import _matrix as matrix_mod

    arch = (arch,) if isinstance(arch, str) else tuple(arch)
    objective = (objective,) if isinstance(objective, str) else tuple(objective)
    metric = options.pop("metric", ())
    options["metric"] = (metric,) if isinstance(metric, str) else tuple(metric)
    return matrix_mod.matrix(dataset, arch, objective, **options)


class Study:
    """A hyperparameter study on Optuna (what `gan study` does): trials of `gan run`, the best by a logged target.

        study = gr.Study.run("lr.toml", out="studies/lr", workers=2)
        print(study.best["params"], study.best["value"])
        gr.Study.open("studies/lr").export("best.safetensors")
    """

    def __init__(self, folder: str | Path) -> None:
        self.dir = Path(folder)

    @classmethod
    def run(cls, study_file: str | Path, *, out: str | Path, trials: int | None = None, workers: int = 1,
            storage: str | None = None, pruner: str | None = None, registry: Any = None, say: Any = None) -> Study:
        """Check the study file, then train the trials that are missing (again after a stop: it carries on);
        `say` gets each line of progress (default: standard error)."""
        from . import _study

        return cls(_study.run(study_file, out, trials=trials, workers=workers, storage=storage, pruner=pruner,
                              registry=registry, say=say))

    @classmethod
    def open(cls, folder: str | Path) -> Study:
        """A study folder on disk (`gan study run --out FOLDER`)."""
        study = cls(folder)
        study.summary()  # refuses a folder that holds no study
        return study

    def summary(self) -> dict[str, Any]:
        """Every trial (`number`, `state`, `params`, `value`, `std`, `runs`, `command`) and the best, as
        `gan study show --json` prints them."""
        from . import _study_report

        return _study_report.summary(self.dir)

    @property
    def best(self) -> dict[str, Any]:
        """The best COMPLETE trial: `number`, `params`, `value` (the mean over seeds), `std`, `runs`, `command`."""
        from . import _study_report

        return _study_report.best(self.dir)

    def best_run(self, registry: Any = None) -> Run:
        """The best trial's run (its first seed), to sample, evaluate or export."""
        return Run.open(self.dir / self.best["runs"][0], registry=registry)

    def export(self, path: str | Path, *, force: bool = False) -> Path:
        """Write the best trial's generator as one .safetensors file (`gan study best --export`)."""
        return self.best_run().export(path, force=force)

    def __repr__(self) -> str:
        return f"Study({str(self.dir)!r})"


# -- a run's life: begin a new one, reopen one on disk, train it -------------------------------------------------
def _begin(plan: Any, run_dir: Path, progress: bool):
    """Seed, build the trainer and write the run folder's config: a new run, ready to train."""
    from ._distributed import join
    from .runs import check_new_run_dir, remove_unfinished, write_config
    from .training import Trainer, resolve_device, seed_everything

    settings = plan.settings
    world, device = join(resolve_device(settings.device))
    world.decide(lambda: check_new_run_dir(run_dir))  # rank 0 looks; every rank stops if it must
    seed_everything(settings.seed)
    trainer = Trainer(plan, run_dir, device, progress=progress, world=world)
    # an empty folder the user gave is theirs: never removed; one the lock made is the run's
    trainer.made_run_dir = not run_dir.exists() or _runlock.made_here(run_dir)
    if not world.main:  # the other ranks never touch the run folder
        return trainer
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"--out {run_dir}: cannot make the run folder ({error.strerror or error})") from None
    try:
        write_config(run_dir, plan, world)
    except BaseException:
        remove_unfinished(trainer)
        raise
    print(f"run directory: {run_dir}" + (f" ({world.size} processes, {world.backend})" if world.joined else ""),
          flush=True)
    if plan.defaults_from:
        print(f"defaults: {_defaults_line(plan)}", flush=True)
    return trainer


def _defaults_line(plan: Any) -> str:
    """Each setting the user left to the defaults, with its value and who chose it (DEFAULTS_PRECEDENCE)."""
    by_source: dict[str, list[str]] = {}
    for key, source in plan.defaults_from.items():
        if "." in key:  # a component's parameter (e.g. objective.gp_weight), as it was given to it
            slot, _, name = key.partition(".")
            value = plan.settings.params.get(slot, {}).get(name)
        else:
            value = plan.latent_dim if key == "latent_dim" else getattr(plan.settings, key, None)
        by_source.setdefault(source, []).append(f"{key}={value}")
    return "; ".join(f"{', '.join(values)} ({source})" for source, values in by_source.items())


def _reopen(registry: Any, run_dir: Path, *, steps: int | None = None, epochs: int | None = None,
            device: str | None = None, progress: bool = False):
    """The trainer of an existing run at its last checkpoint, with a new total length if given."""
    from . import checkpoint
    from ._distributed import join
    from .runs import check_run_files, fitting, plan_for_run, write_config
    from .training import Trainer, resolve_device

    run_dir = Path(run_dir)
    overrides: dict[str, Any] = {}
    if steps is not None or epochs is not None:
        overrides = {"steps": steps, "epochs": epochs}
    if device is not None:
        overrides["device"] = device
    plan, _ = plan_for_run(registry, run_dir, **overrides)
    _choose_evaluator(registry, plan)
    check_run_files(run_dir)
    world, device = join(resolve_device(plan.settings.device))
    state = checkpoint.load(run_dir / "checkpoints" / "last.pt")
    trainer = Trainer(plan, run_dir, device, progress=progress, world=world)
    with fitting(run_dir):
        trainer.load_state_dict(state)
    _check_more_to_do(trainer)
    write_config(run_dir, plan, world, trainer.step)
    if world.main:
        print(f"resuming {run_dir} at step {trainer.step}"
              + (f" on {world.size} processes ({world.backend})" if world.joined else ""), flush=True)
    return trainer


def _check_more_to_do(trainer: Any) -> None:
    settings, run_dir = trainer.plan.settings, trainer.run_dir
    if settings.steps is not None and trainer.step >= settings.steps:
        raise UserError(f"{run_dir} is already at step {trainer.step}; ask for more with --steps N (a new total)")
    if settings.epochs is not None and trainer.batches.epoch >= settings.epochs:
        raise UserError(
            f"{run_dir} has already trained {trainer.batches.epoch} epochs; ask for more with --epochs N (a new total)"
        )


def _train_new(trainer: Any) -> None:
    """Train a run that `_begin` made; a run that fails before its first checkpoint leaves nothing behind."""
    from .runs import remove_unfinished

    settings = trainer.plan.settings
    try:
        trainer.train(max_steps=settings.steps, max_epochs=settings.epochs)
    except BaseException:
        if trainer.saved_step is None and trainer.run_dir.is_dir():
            remove_unfinished(trainer)
        raise


def _choose_evaluator(registry: Any, plan: Any) -> None:
    """What `--eval-every` measures, built and checked before training (the plan only names the metrics)."""
    if plan.settings.eval_every:
        from . import evaluation

        plan.evaluator = evaluation.for_plan(registry, plan)
