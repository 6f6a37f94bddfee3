"""The `gan` command. Heavy imports happen inside the commands that need them, not at start-up: the engine's
modules (torch: ~3 s), plugin loading (`_plan`, `_console.registry`: importlib.metadata, ~25 ms), Optuna (~1 s:
the `gan study` commands, through `_study`), tomllib and traceback (~2 ms each). `gan --help` starts without them.

Layer: front ends (docs/architecture.md).
"""
from __future__ import annotations

import difflib
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from . import _console, _threads
from . import params as params_mod
from ._components import PRECISION_NAMES, Scale, kind_named, kind_words
from ._files import read_toml
from ._schedules import MOVING_SLOTS, SYNTAX as SCHEDULE_SYNTAX
from ._runlock import check_free
from .api import Run
from .api import export_run
from .scaffold import new_plugin_command
from .errors import Interrupted, PluginFailure, PluginLoadError, RunStopped, UserError

class _Group(click.Group):
    """Turns the user's mistakes into one-line errors with exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (UserError, PluginLoadError) as error:
            if isinstance(error, PluginLoadError) and error.__cause__ is not None:  # strict mode: for the author
                import traceback  # ~2 ms that `gan --help` need not pay: only a plugin author's error prints it

                traceback.print_exception(error.__cause__, file=sys.stderr)
            if getattr(error, "quiet", False):  # a distributed run's other ranks: rank 0 says it once
                ctx.exit(2)
            raise _fail(str(error)) from None
        except click.UsageError as error:  # a bad flag or value: one line too, with where to look
            where = error.ctx.command_path if error.ctx is not None else ctx.command_path
            raise _fail(f"{error.format_message().rstrip('.')} (see `{where} --help`)") from None
        except PluginFailure as error:
            raise _fail(str(error), exit_code=1) from None
        except KeyboardInterrupt:  # a second Ctrl-C while stopping
            click.echo("aborted at once; the last checkpoint written is kept", err=True)
            ctx.exit(130)
        except Interrupted as stop:
            from ._distributed import current

            if current().main:  # a distributed run's other ranks stopped at the same step: rank 0 says it
                click.echo(f"{stop}; continue with `gan resume {stop.path.parent.parent}`", err=True)
            ctx.exit(stop.exit_code)
        except RunStopped as stop:
            click.echo(f"Error: {stop}", err=True)
            ctx.exit(stop.exit_code)


class _ImagesOrSchedule(click.ParamType):
    """A whole number of images, or `schedule(START, END[, SHAPE[, STEPS]])` for the settings to parse."""

    name = "images"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, int) or str(value).strip().lower().startswith("schedule"):
            return value
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is not a whole number of images or schedule(START, END)", param, ctx)


IMAGES_OR_SCHEDULE = _ImagesOrSchedule()


def _fail(message: str, exit_code: int = 2) -> click.ClickException:
    error = click.ClickException(message)
    error.exit_code = exit_code
    return error


def _registry():
    return _console.registry()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gan-registry", prog_name="gan")
@click.option("--debug", is_flag=True, help="Show the traceback when a plugin's code fails.")
def cli(debug: bool) -> None:
    """Train GANs from installed architecture, objective and dataset plugins."""
    if debug:
        os.environ["GAN_REGISTRY_DEBUG"] = "1"


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_command(as_json: bool) -> None:
    """Installed plugins, their versions, what each registers, and broken ones."""
    registry = _registry()
    rows = [p.as_dict() for p in ([registry.core] if registry.core else []) + registry.plugins]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no plugins installed")
    for row in rows:
        dist = f"{row['distribution']} {row['version']}" if row["distribution"] else "(in-process)"
        click.echo(f"{row['name']}  [{dist}]  {row['status']}")
        for kind, names in row["registers"].items():
            click.echo(f"    {kind}: {', '.join(names)}")
        if row["error"]:
            click.echo(f"    error: {row['error']}")
        for note in row["notes"]:
            click.echo(f"    note: {note}")


def _component_row(c) -> dict[str, Any]:
    row = {
        "kind": c.kind,
        "name": c.name,
        "summary": c.summary,
        "plugin": c.origin.plugin if c.origin else None,
        "distribution": c.origin.distribution if c.origin else None,
        "version": c.origin.version if c.origin else None,
        "parameters": params_mod.describe(c.params),
    }
    if c.kind in MOVING_SLOTS:
        for parameter in row["parameters"]:
            parameter["schedule"] = "float" in parameter["type"]
    if c.kind == "architecture":
        row["pieces"] = c.pieces()
        row["latent_dim"] = c.latent_dim
    if hasattr(c, "needs_for"):
        row["needs"] = c.needs_for(c.default_params()).describe()  # at the default parameters
    if getattr(c, "suggests", None):
        row["suggests"] = {key: str(value) if isinstance(value, Scale) else value for key, value in c.suggests.items()}
    if hasattr(c, "conditional"):
        row["conditional"] = c.conditional
    return row


_PRECEDENCE = "the dataset's suggestions win over the objective's, then the architecture's"


@cli.command("list")
@click.argument("kind", required=False, type=click.Choice(kind_words()), metavar="[KIND]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(kind: str | None, as_json: bool) -> None:
    """Registered components, optionally of one KIND (architectures, objectives, datasets, ...)."""
    registry = _registry()
    components = registry.components(kind_named(kind).name if kind else None)
    if as_json:
        click.echo(json.dumps([_component_row(c) for c in components], indent=2, default=str))
        return
    current = None
    for c in components:
        if c.kind != current:
            current = c.kind
            click.echo(f"{c.kind}s:")
        if registry.is_clashing(c):  # the bare name is refused: show the one that works
            click.echo(f"  {registry.qualified(c):<20} {c.summary} (name clash: use the full name)")
        else:
            how = f" (--log {c.name})" if getattr(c, "logger", False) and not c.always else ""
            click.echo(f"  {c.name:<20} {c.summary}{how}")


@cli.command("describe")
@click.argument("name")
@click.option("--kind", type=click.Choice(kind_words()), help="When NAME is taken by several kinds.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def describe_command(name: str, kind: str | None, as_json: bool) -> None:
    """Summary, parameters (type, default, help), needs and providing plugin of NAME."""
    registry = _registry()
    found = [registry.get(kind_named(kind).name, name)] if kind else registry.find(name)
    if not found:
        every = sorted({c.name for c in registry.components()})
        close = difflib.get_close_matches(name, every, n=3, cutoff=0.5)
        raise UserError(f"no component named '{name}'" + (f"; did you mean {', '.join(close)}?" if close else ""))
    rows = [_component_row(c) for c in found]
    from ._plan import architecture_conditions

    for row, component in zip(rows, found):
        if component.kind == "architecture":
            row["conditional"] = architecture_conditions(registry, component)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        source = f"{row['plugin']} ({row['distribution']} {row['version']})" if row["distribution"] else row["plugin"]
        click.echo(f"{row['kind']} {row['name']}: {row['summary']}")
        click.echo(f"  from: {source}")
        for role, piece in row.get("pieces", {}).items():
            click.echo(f"  {role}: {piece}")
        if "latent_dim" in row:
            click.echo(f"  default latent dim: {row['latent_dim']}")
        for need in row.get("needs", []):
            click.echo(f"  needs: {need}")
        if row.get("conditional"):
            click.echo("  conditions on class labels (gan run --conditional)")
        if "suggests" in row:
            taken = ", ".join(f"{key}={value}" for key, value in row["suggests"].items())
            click.echo(f"  suggests (used where a run sets nothing; {_PRECEDENCE}): {taken}")
        if row["parameters"]:
            click.echo("  parameters:")
        for p in row["parameters"]:
            click.echo(f"    {p['name']} ({p['type']}, default {p['default']!r}): {p['help']}")
        moving = [p["name"] for p in row["parameters"] if p.get("schedule")]
        if moving:
            click.echo(f"  schedules: {', '.join(moving)} also take {SCHEDULE_SYNTAX}, a value that moves over the "
                       f"run (e.g. -p '{row['kind']}.{moving[0]}=schedule(A, B)'; docs: concepts, Schedules)")


def _parse_param_flags(values: tuple[str, ...]) -> dict[str, dict[str, str]]:
    grouped: dict[str, dict[str, str]] = {}
    for item in values:
        key, sep, value = item.partition("=")
        slot, dot, name = key.partition(".")
        if not sep or not dot or not slot or not name:
            raise UserError(f"-p {item!r}: expected KIND.PARAM=VALUE, e.g. -p objective.label_smoothing=0.1")
        grouped.setdefault(slot.strip(), {})[name.strip()] = value
    return grouped


def _settings(config_path: Path | None, flags: dict[str, Any], param_flags: tuple[str, ...]):
    """TOML settings first, then command-line flags over them."""
    from ._plan import Settings, settings_from_table

    values: dict[str, Any] = {}
    params: dict[str, dict[str, Any]] = {}
    if config_path is not None:
        values, params = settings_from_table(read_toml(config_path), f"--config {config_path}")
    values.update({k: v for k, v in flags.items() if v is not None and v != ()})
    for listed in ("callbacks", "loggers", "eval_metrics"):
        if isinstance(values.get(listed), tuple):  # a repeated flag; a TOML value keeps its type for the check
            values[listed] = list(values[listed])
    for slot, table in _parse_param_flags(param_flags).items():
        params.setdefault(slot, {}).update(table)
    for required in ("arch", "objective"):
        if required not in values:
            raise UserError(f"--{required} is required (or set '{required}' in --config)")
    try:
        return Settings(**values, params=params)
    except TypeError as error:
        raise UserError(f"invalid settings: {error}") from None


@cli.command("run")
@click.option("--arch", help="Architecture preset: picks the generator and discriminator.")
@click.option("--objective", help="Objective: losses, optimisers and schedule.")
@click.option("--dataset", help="Dataset (default: digits, which works offline).")
@click.option("--generator", help="Use this generator instead of the architecture's.")
@click.option("--discriminator", help="Use this discriminator instead of the architecture's.")
@click.option("--epochs", type=int, help="Train until this many epochs in total (default: the suggested steps of the dataset, architecture or objective, else 100 epochs).")
@click.option("--steps", type=int, help="Train until this many generator steps in total.")
@click.option("--batch-size", type=int, help="Samples per batch (default: the dataset's, architecture's or objective's suggestion, else 64).")
@click.option("--latent-dim", type=int, help="Noise/code size (default: the dataset's suggestion, else the architecture's).")
@click.option("--lr-scale", type=float, metavar="FACTOR",
              help="Multiply every learning rate of the objective (default 1, or the dataset's suggestion).")
@click.option("--lr-decay-start", type=float, metavar="FRACTION",
              help="Hold the learning rates for this fraction of the run, then decay them linearly (the last step trains at 1/n of them).")
@click.option("--data-dir", type=click.Path(), help="Where dataset files are.")
@click.option("--image-size", type=int, help="Resize image datasets to this many pixels a side.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), help="Default auto.")
@click.option("--seed", type=int, help="Random seed (default 0).")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default runs/<time>-<arch>-<objective>-<dataset>).")
@click.option("--sample-every", type=int, help="Write a sample grid and checkpoint every N steps (default: each epoch).")
@click.option("--log-every", type=int, help="Log losses every N steps (default 50).")
@click.option("--keep", type=int, help="Keep the N newest checkpoints as checkpoints/step-N.pt besides last.pt (default 1: last.pt only).")
@click.option("--callback", "callbacks", multiple=True, metavar="NAME",
              help="Add a callback to the ones every run has (see `gan list callbacks`); repeatable.")
@click.option("--log", "loggers", multiple=True, metavar="NAME",
              help="Also log to this logger (tensorboard, csv; `gan list callbacks` marks loggers); repeatable. metrics.jsonl is always written.")
@click.option("--eval-every", type=int, metavar="STEPS",
              help="Measure quality every STEPS steps (and at the end) and keep checkpoints/best.pt.")
@click.option("--eval-metric", "eval_metrics", multiple=True, metavar="NAME",
              help="Metric of --eval-every (repeatable; default fid); the first picks best.pt.")
@click.option("--eval-samples", type=int, help="Generated samples per evaluation (default 2000).")
@click.option("--extractor", help="Feature extractor of image metrics (default: the dataset's, else inception-v3).")
@click.option("--ema", type=float, metavar="DECAY",
              help="Keep a moving average of the generator (e.g. 0.999; 0: none, whatever the dataset suggests); grids, eval, sample and export use it.")
@click.option("--ema-half-life", type=IMAGES_OR_SCHEDULE, metavar="IMAGES",
              help="The average's decay as a half-life in images (StyleGAN2's ema_kimg x 1000), instead of --ema; "
                   "'schedule(START, END)' moves it over the run.")
@click.option("--ema-start", type=int, metavar="STEP", help="Copy the generator until this step, then average (default 0).")
@click.option("--augment", metavar="NAME",
              help="Augment what the discriminator judges, real and fake alike (see `gan list augments`).")
@click.option("--precision", type=click.Choice(PRECISION_NAMES),
              help="32 (default); bf16: bfloat16 autocast; 16: float16 autocast with a loss scaler per optimiser.")
@click.option("--compile", "compile", is_flag=True, default=None,
              help="torch.compile the generator and discriminator (warm-up first; pays off on GPUs).")
@click.option("--compile-backend", metavar="NAME", help="torch.compile backend (default inductor; aot_eager to check tracing).")
@click.option("--channels-last/--no-channels-last", default=None,
              help="Conv nets and images in channels_last memory (default: on for image runs on CUDA).")
@click.option("--deterministic", "deterministic", is_flag=True, default=None,
              help="Deterministic kernels only: CUDA runs resume bit-exact too, somewhat slower.")
@click.option("--conditional", "conditional", is_flag=True, default=None,
              help="Condition the generator and discriminator on the dataset's class labels (gan sample --class).")
@click.option("--nproc", type=click.IntRange(min=1), metavar="N",
              help="Train data-parallel in N processes on this machine (hands the command to torchrun; one per GPU).")
@click.option("--sync-bn/--no-sync-bn", "sync_bn", default=None,
              help="Distributed runs: BatchNorm statistics of the global batch (default) or of each process's share.")
@click.option("-p", "param", multiple=True, metavar="KIND.PARAM=VALUE",
              help="Set a component parameter; repeatable. A float of the objective or augment may move over the run: "
                   "-p 'objective.r1=schedule(0.05, 0.005)' (START, END[, cosine|linear[, STEPS]]).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="TOML file with these settings.")
@click.option("--threads", type=click.IntRange(1, 1024), metavar="N",
              help="torch's CPU threads (default: this machine's free share of its cores; see the run's config).")
@click.option("--no-progress", is_flag=True, help="Plain log lines instead of a progress bar.")
def run_command(param: tuple[str, ...], config_path: Path | None, out: Path | None, no_progress: bool,
                nproc: int | None, threads: int | None, **flags: Any) -> None:
    """Train a GAN: gan run --arch mlp --objective gan --dataset gaussians."""
    settings = _settings(config_path, flags, param)
    run = Run.from_settings(settings, out=out, registry=_registry(), progress=not no_progress)
    if nproc is not None:  # checked here first: a mistake is one line and exit 2, before any process starts
        from ._distributed import hand_to_torchrun

        check_free(run.dir)
        hand_to_torchrun(nproc, run._plan, extra=() if out is not None else ("--out", str(run.dir)))
    run.train(threads=threads)
    _done(run.dir)


def _done(run_dir: Path) -> None:
    from ._distributed import current

    if current().main:
        click.echo(f"done: {run_dir}")


@cli.command("resume")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--epochs", type=int, help="New total number of epochs.")
@click.option("--steps", type=int, help="New total number of generator steps.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]))
@click.option("--nproc", type=click.IntRange(min=1), metavar="N",
              help="Go on data-parallel in N processes (any number: checkpoints do not depend on it).")
@click.option("--threads", type=click.IntRange(1, 1024), metavar="N",
              help="torch's CPU threads (default: this machine's free share of its cores; see the run's config).")
@click.option("--no-progress", is_flag=True, help="Plain log lines instead of a progress bar.")
def resume_command(run_dir: Path, epochs: int | None, steps: int | None, device: str | None, nproc: int | None,
                   no_progress: bool, threads: int | None) -> None:
    """Continue a run from its last checkpoint, to a new total if given."""
    if epochs is not None and steps is not None:
        raise UserError("give --epochs or --steps, not both")
    run = Run.open(run_dir, registry=_registry(), progress=not no_progress)
    if nproc is not None:
        from ._distributed import hand_to_torchrun

        check_free(run_dir)
        hand_to_torchrun(nproc, run._plan)
    run.train(steps=steps, epochs=epochs, device=device, threads=threads)
    _done(run_dir)


@cli.command("sample")
@click.argument("source", metavar="RUN_DIR|DIR|MODEL.safetensors", type=click.Path(path_type=Path))
@click.option("-n", "count", type=int,
              help="Number of samples (default 64; a conditional run: 8 of each class drawn; --interpolate: "
                   "rows x steps, or the walkers of a .gif; --nearest: rows, default 8).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help=".png grid/scatter, or .pt/.npy raw samples (--interpolate: also .gif).")
@click.option("--class", "classes", multiple=True, metavar="CLASS",
              help="Of a conditional generator: draw this class (a name or an index; repeatable: a row each).")
@click.option("--truncation", type=float, metavar="PSI",
              help="The truncation trick: the generator's own where it has one (StyleGAN2: w = w_avg + PSI (w - "
                   "w_avg)), else BigGAN's: noise values beyond +-PSI are drawn again (N(0, I) noise only).")
@click.option("--interpolate", is_flag=True,
              help="Walks between random latent points, a row each (slerp for N(0, I) noise, a straight line for an "
                   "objective's own prior); a .gif walks a loop of 4 points.")
@click.option("--interpolate-steps", type=int, metavar="K", help="Samples a walk takes from point to point (default 8).")
@click.option("--nearest", is_flag=True,
              help="Each sample beside its nearest training images (L2 between --extractor features), with the FID "
                   "against the training and the held-out split.")
@click.option("--nearest-k", type=int, metavar="K", help="Training images beside each sample of --nearest (default 5).")
@click.option("--extractor", help="Feature extractor of --nearest (default: the dataset's, as `gan eval`).")
def sample_command(source: Path, count: int, seed: int, output: Path, classes: tuple[str, ...],
                   truncation: float | None, interpolate: bool, interpolate_steps: int | None, nearest: bool,
                   nearest_k: int | None, extractor: str | None) -> None:
    """Draw samples from a run's generator, or from a folder or file written by `gan export`.

    Raw samples are in the dataset's value range; the same seed draws the same samples from a run and its export.
    A conditional generator draws a row of each class, or the classes asked with --class.
    """
    from . import generate, pictures

    if interpolate and nearest:
        raise UserError("give --interpolate or --nearest, not both")
    if interpolate_steps is not None and not interpolate:
        raise UserError("--interpolate-steps sets the walk of --interpolate")
    if (nearest_k is not None or extractor is not None) and not nearest:
        raise UserError("--nearest-k and --extractor set the neighbours of --nearest")
    if count is not None:
        generate.check_count("-n", count)
    registry = _registry()
    if interpolate:
        pictures.walk(registry, source, count, seed, output, classes, interpolate_steps, truncation)
        click.echo(f"wrote {output}")
    elif nearest:
        from .training import resolve_device

        found = pictures.nearest(registry, source, count, seed, output, classes, nearest_k, extractor, truncation,
                                 device=str(resolve_device("auto")))
        click.echo("\n".join(found.lines()))
    else:
        click.echo(f"wrote {generate.sample(registry, source, count, seed, output, classes, truncation)}")


@cli.command("export")
@click.argument("run_dir", metavar="RUN_DIR|DIR", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="A folder (end it with /: weights, config.json, the model card README.md, samples.png, "
                   "curves.png) or one .safetensors file.")
@click.option("--force", is_flag=True, help="Overwrite the output file, or the export's files in the folder.")
@click.option("--license", metavar="ID", help="The card's license (a hub identifier, e.g. mit; default: none stated).")
@click.option("--verify", is_flag=True,
              help="Check the export folder DIR instead: its weights' sha256, config.json and card must agree.")
def export_command(run_dir: Path, output: Path | None, force: bool, license: str | None, verify: bool) -> None:
    """Write a run's generator as a shareable folder with its model card, or as one .safetensors file (weights,
    components, prior, value range).

    `gan sample DIR` (or `gan_registry.load_generator(DIR)`) draws from it wherever the plugins that built it are
    installed; `huggingface_hub.upload_folder` publishes the folder as it is.
    """
    if verify:
        if output is not None or license is not None or force:
            raise UserError("gan export --verify DIR checks a folder; it takes no -o, --license or --force")
        from . import export

        config = export.verify(run_dir)
        click.echo(f"{run_dir}: weights (sha256 {config['weights']['sha256'][:16]}...), config.json and card agree")
        return
    if output is None:
        raise UserError("give -o DIR/ (a folder with the model card) or -o MODEL.safetensors")
    path = export_run(_registry(), run_dir, output, force, license)
    size = sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size
    click.echo(f"wrote {path}{'/' if path.is_dir() else ''} ({size / 1e6:.2f} MB)")


@cli.command("reconstruct")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("-n", "count", type=int, default=32, show_default=True, help="Number of held-out inputs.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="PNG of input/reconstruction rows.")
def reconstruct_command(run_dir: Path, count: int, seed: int, output: Path) -> None:
    """Encode and decode held-out data with a run that has an encoder."""
    from . import generate

    path, error = generate.reconstruct(_registry(), run_dir, count, seed, output)
    click.echo(f"wrote {path} (mean L1 reconstruction error {error:.4f})")


@cli.command("eval")
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option("--metric", "metrics", multiple=True, help="Metric to run (repeatable; default: every one that applies).")
@click.option("--samples", "count", type=int, default=2500, show_default=True, help="Generated samples to evaluate.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@click.option("--extractor", help="Feature extractor of image metrics (default: the dataset's, else inception-v3).")
@click.option("--real", metavar="SRC", help="Reference images: a dataset (NAME, NAME:train, NAME:heldout) or a folder.")
@click.option("--fake", metavar="SRC", help="Images to score: a run folder, a `gan export` file, a folder or a dataset.")
@click.option("--reference-split", type=click.Choice(["auto", "train", "heldout"]), default="auto", show_default=True,
              help="auto: the held-out split where it has 10,000 images or more, else the training split.")
@click.option("--checkpoint", "checkpoint_name", type=click.Choice(["last", "best"]), default="last", show_default=True,
              help="Which of the run's checkpoints to sample (best.pt is kept by `gan run --eval-every`).")
@click.option("--truncation", type=float, metavar="PSI",
              help="Draw the samples (of RUN_DIR or a generator given as --fake) with the truncation trick at PSI.")
@click.option("--data-dir", type=click.Path(), help="Where the files of a --real/--fake dataset are.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True,
              help="Where features are extracted.")
@click.option("-p", "param", multiple=True, metavar="KIND.PARAM=VALUE",
              help="metric.PARAM, extractor.PARAM (or dataset.PARAM of a --real/--fake dataset); repeatable.")
@click.option("--threads", type=click.IntRange(1, 1024), metavar="N",
              help="torch's CPU threads (default: this machine's free share of its cores; see the run's config).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def eval_command(run_dir: Path | None, metrics: tuple[str, ...], count: int, seed: int, extractor: str | None,
                 real: str | None, fake: str | None, reference_split: str, checkpoint_name: str, data_dir: str | None,
                 device: str, param: tuple[str, ...], as_json: bool, truncation: float | None,
                 threads: int | None) -> None:
    """Measure a run's samples (RUN_DIR/eval.json keeps the report), or any two image sources with --real/--fake.

    Each number comes with its protocol: extractor, generated samples, reference split and size, resizing.
    """
    from . import generate
    from .training import resolve_device

    _threads.use(threads)
    generate.check_count("--samples", count)
    grouped = _parse_param_flags(param)
    allowed = {"metric", "extractor"} | ({"dataset"} if run_dir is None else set())
    if set(grouped) - allowed:
        raise UserError(f"gan eval -p takes {', '.join(f'{g}.PARAM' for g in sorted(allowed))}=VALUE, "
                        f"not {sorted(set(grouped) - allowed)[0]}.*")
    where = str(resolve_device(device))
    registry = _registry()
    if run_dir is not None:
        if real or fake:
            raise UserError("give RUN_DIR, or --real and --fake, not both")
        report = generate.evaluate(registry, run_dir, metrics, count, seed, grouped.get("metric", {}),
                                   extractor=extractor, extractor_params=grouped.get("extractor", {}),
                                   reference_split=reference_split, checkpoint_name=f"{checkpoint_name}.pt",
                                   device=where, truncation=truncation)
    else:
        if not (real and fake):
            raise UserError("give a RUN_DIR to evaluate, or both --real SRC and --fake SRC")
        report = generate.compare(registry, real, fake, metrics, count, seed, grouped, extractor=extractor,
                                  data_dir=data_dir, reference_split=reference_split, device=where,
                                  truncation=truncation)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for name, values in report["metrics"].items():
        click.echo(f"{name}:")
        for key, value in values.items():
            click.echo(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
    for name, reason in report["skipped"].items():
        click.echo(f"skipped {name}: {reason}")
    if report.get("protocol"):
        click.echo("protocol:")
        for key, value in report["protocol"].items():
            click.echo(f"  {key}: {value}")


@cli.command("plot")
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The .png, .svg or .pdf to write.")
@click.option("--key", "keys", multiple=True, metavar="PATTERN",
              help="Plot these logged values (glob, e.g. 'loss/*', 'eval/fid', 'lr/*'; repeatable; default: losses and metrics).")
@click.option("--smooth", type=float, default=0.6, show_default=True,
              help="TensorBoard-style smoothing weight in [0, 1); the raw curve is drawn faint beneath.")
def plot_command(run_dirs: tuple[Path, ...], output: Path, keys: tuple[str, ...], smooth: float) -> None:
    """Loss and metric curves of one or more runs, a panel per value shared by all runs."""
    from . import plots

    click.echo(f"wrote {plots.plot(list(run_dirs), output, keys, smooth)}")


@cli.command("runs")
@click.argument("root", required=False, default="runs", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def runs_command(root: Path, as_json: bool) -> None:
    """The run folders under ROOT (default: runs): combination, steps, last and best metric."""
    from . import plots

    summaries = [plots.summarise(d) for d in plots.find_runs(root)]
    if as_json:
        click.echo(json.dumps(summaries, indent=2))
    elif summaries:
        click.echo(plots.runs_table(summaries))
    else:
        click.echo(f"no runs under {root}")


@cli.group("matrix", invoke_without_command=True)
@click.option("--dataset", "datasets", multiple=True, metavar="NAME[:PARAM=VALUE,...]",
              help="Train on this dataset (default digits; repeatable, e.g. --dataset gaussians "
                   "--dataset gaussians:layout=grid).")
@click.option("--arch", "archs", multiple=True, metavar="NAME", help="Only this architecture (repeatable; default all).")
@click.option("--objective", "objectives", multiple=True, metavar="NAME",
              help="Only this objective (repeatable; default all).")
@click.option("--steps", type=click.IntRange(min=1), help="Train every cell this many steps (default: each cell's own "
              "default budget).")
@click.option("--out", type=click.Path(path_type=Path), help="The matrix folder (default matrix/<dataset>).")
@click.option("--workers", type=click.IntRange(1, 256), metavar="N",
              help="Cells trained at once, each in its own process (default: the cores / --threads).")
@click.option("--threads", type=click.IntRange(1, 1024), metavar="N",
              help="torch's CPU threads of each cell's process (default: the cores shared among the workers).")
@click.option("--samples", type=click.IntRange(min=2), default=2000, show_default=True,
              help="Generated samples each cell is measured on (and real ones for the floor).")
@click.option("--metric", "metrics", multiple=True, metavar="NAME",
              help="Measure cells with this metric (repeatable; default: fid and precision-recall on images, every "
                   "metric that applies otherwise).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@click.pass_context
def matrix_command(ctx: click.Context, datasets: tuple[str, ...], archs: tuple[str, ...],
                   objectives: tuple[str, ...], steps: int | None, out: Path | None, workers: int | None,
                   threads: int | None, samples: int, metrics: tuple[str, ...], seed: int) -> None:
    """Train every (architecture, objective) pair the plan accepts and measure each against the real-data floor.

    Each cell is a run folder under OUT/cells; running the command again trains only what is missing. Writes
    matrix.json, matrix.csv, heatmap.png and contact-sheet.png; `gan matrix show OUT` prints the table.
    """
    if ctx.invoked_subcommand is not None:
        return
    from . import _matrix as matrix

    result = matrix.matrix(list(datasets) or matrix.DEFAULT_DATASET, archs, objectives, steps=steps, out=out,
                           workers=workers, threads=threads, samples=samples, seed=seed, metric=metrics,
                           registry=_registry(), say=lambda text: click.echo(text, err=True))
    click.echo(matrix.table(result), nl=False)


@matrix_command.command("show")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="matrix.json as it is.")
@click.option("--commands", is_flag=True, help="A column with the `gan run` command of each cell.")
def matrix_show_command(folder: Path, as_json: bool, commands: bool) -> None:
    """The table of a matrix folder: each cell's figures, the floors, the refused pairs and why."""
    from . import _matrix as matrix

    result = matrix.read(folder)
    click.echo(json.dumps(result, indent=2) if as_json else matrix.table(result, commands), nl=as_json)


@cli.group("study")
def study_command() -> None:
    """Hyperparameter studies on Optuna: each trial a `gan run` folder, the best found by a logged target.

    The study file (TOML) holds `gan run` settings, a [study] table (target, direction, trials, seeds, sampler) and a
    [search] table of the flags and KIND.PARAM parameters to search; docs/studies.md has the form.
    """


@study_command.command("run")
@click.argument("study_file", metavar="STUDY.toml", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="The study folder: trials/ (run folders), logs/, study.db, pictures.")
@click.option("--trials", type=click.IntRange(min=1), metavar="N",
              help="COMPLETE trials to reach (default: [study] trials); pruned and failed ones do not count.")
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True, metavar="K",
              help="Worker processes running trials side by side, sharing the storage and the cores.")
@click.option("--storage", metavar="URL",
              help="An Optuna storage URL (default sqlite:///OUT/study.db; e.g. postgresql://host/db to share one "
                   "study among machines).")
@click.option("--pruner", type=click.Choice(("none", "median", "hyperband")),
              help="Stop trials whose intermediate target is behind (default: [study] pruner, else median).")
def study_run_command(study_file: Path, out: Path, trials: int | None, workers: int, storage: str | None,
                      pruner: str | None) -> None:
    """Train the trials of STUDY.toml that are missing; run it again after a stop to carry on."""
    from . import _study

    _study.run(study_file, out, trials=trials, workers=workers, storage=storage, pruner=pruner,
               registry=_registry(), say=lambda text: click.echo(text, err=True))
    click.echo(_report_module().table(out), nl=False)


def _report_module():
    from . import _study_report  # optuna (~1 s): only the study commands load it

    return _study_report


@study_command.command("show")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Every trial and the best, machine-readable.")
@click.option("--no-pictures", is_flag=True, help="Print only; draw no pictures into FOLDER.")
def study_show_command(folder: Path, as_json: bool, no_pictures: bool) -> None:
    """The best trials (target mean ± std over seeds, a reproducing `gan run` command) and pictures in FOLDER."""
    report = _report_module()
    if not no_pictures:
        for path in report.draw(folder, say=lambda text: click.echo(text, err=True)):
            click.echo(f"wrote {path}", err=True)
    click.echo(json.dumps(report.summary(folder), indent=2) if as_json else report.table(folder), nl=as_json)


@study_command.command("best")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--export", "export_path", type=click.Path(path_type=Path), metavar="MODEL.safetensors",
              help="Write the best trial's generator (of its first seed) as `gan export` does.")
@click.option("--force", is_flag=True, help="Overwrite the exported file if it exists.")
def study_best_command(folder: Path, export_path: Path | None, force: bool) -> None:
    """The best trial: its number, parameters, target and command; --export writes its generator."""
    best = _report_module().best(folder)
    if export_path is None:
        click.echo(json.dumps(best, indent=2))
        return
    from . import export

    path = export.export(_registry(), folder / best["runs"][0], export_path, force=force)
    click.echo(f"wrote {path} (trial {best['number']}, {path.stat().st_size / 1e6:.2f} MB)")


@study_command.command("worker", hidden=True)
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--storage", required=True)
@click.option("--threads", type=click.IntRange(1, 1024), required=True)
@click.option("--index", type=click.IntRange(min=0), default=0)
def study_worker_command(folder: Path, storage: str, threads: int, index: int) -> None:
    """One worker process of `gan study run --workers K`."""
    from . import _study

    _study.work(folder, storage, threads, index, say=lambda text: click.echo(text, err=True))


@cli.group("data")
def data_command() -> None:
    """Prepare datasets once for fast reading at scale (the `packed` dataset reads them); docs/data.md."""


@data_command.command("pack")
@click.option("--dataset", required=True, help="Any dataset the registry knows: folder, mnist, cifar10, digits, ...")
@click.option("--data-dir", type=click.Path(), help="Where the dataset's files are.")
@click.option("-p", "param", multiple=True, metavar="dataset.PARAM=VALUE", help="The dataset's parameters; repeatable.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="A new folder: header.json beside images.npy/labels.npy, or beside the .tar shards.")
@click.option("--image-size", type=click.IntRange(min=1), help="Resize image datasets to this many pixels a side.")
@click.option("--format", "layout", type=click.Choice(["array", "shards"]), default="array", show_default=True,
              help="array: one memory-mapped uint8 array; shards: WebDataset tar files, for streaming.")
@click.option("--shard-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Images per shard (--format shards).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="A progress bar on stderr.")
def data_pack_command(dataset: str, data_dir: str | None, param: tuple[str, ...], out: Path, image_size: int | None,
                      layout: str, shard_size: int, progress: bool) -> None:
    """Pack a dataset's images as uint8, once: `--dataset packed --data-dir OUT` then trains without its source."""
    from . import _pack

    grouped = _parse_param_flags(param)
    if set(grouped) - {"dataset"}:
        raise UserError(f"gan data pack -p takes dataset.PARAM=VALUE, not {sorted(set(grouped) - {'dataset'})[0]}.*")
    header = _pack.pack(_registry(), dataset, grouped.get("dataset", {}), out, data_dir=data_dir,
                        image_size=image_size, layout=layout, shard_size=shard_size, progress=progress)
    images = header["images"]
    where = f"{len(header['shards'])} shards" if header["layout"] == "shards" else "images.npy"
    click.echo(f"packed {images['count']:,} images ({images['channels']}x{images['resolution']}x{images['resolution']}"
               f" uint8{', ' + str(len(header['classes'])) + ' classes' if header['classes'] else ''}) into {out}"
               f" ({where}); train with --dataset packed --data-dir {out}")
    for line in header["skipped"]:
        click.echo(f"skipped: {line}", err=True)


@cli.command("card")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), metavar="DIR",
              help="Rewrite the card of this export folder of RUN_DIR (e.g. after `gan eval`); default: print it.")
@click.option("--license", metavar="ID", help="The card's license (default: the folder's, else none stated).")
def card_command(run_dir: Path, output: Path | None, license: str | None) -> None:
    """The model card of a run's last checkpoint, made from its records alone: reproducing commands, data,
    training, every metric measured on it with its protocol (or "not measured"), classes, license."""
    from . import _share

    text = _share.card(_registry(), run_dir, output, license)
    if output is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"wrote {output / 'README.md'}")


cli.add_command(new_plugin_command)


def main() -> None:
    cli(prog_name="gan")
