"""The combination matrix: every (architecture, objective) pair the plan accepts, trained at its defaults on one
dataset, each in a normal run folder, measured against the real-vs-real floor of the same protocol.

    gan matrix --dataset digits --out matrix/            # every accepted pair, in as many processes as cores allow
    gan matrix show matrix/                               # the table again

A matrix folder holds `cells/<arch>-<objective>-<data>/` (run folders), `logs/` (each cell's command output),
`matrix.json`, `matrix.csv`, `heatmap.png` and `contact-sheet.png`. Running the same command again trains only what
is missing: a finished cell is kept, a killed one goes on from its last checkpoint.

Layer: services and duties (docs/architecture.md).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable

# torch (~3 s, through the engine's modules) and plugin loading (importlib.metadata) are imported inside the
# functions that train and measure: `gan matrix show` prints matrix.json without them.
from . import _matrix_pictures as matrix_pictures
from . import _threads as threads_mod
from . import params as params_mod
from ._components import DataContext
from ._files import last_error_line, read_record, read_text, replacing, write_record
from ._runlock import writing
from ._version import __version__
from .errors import UserError

DEFAULT_DATASET = "digits"
DEFAULT_SAMPLES = 2000
IMAGE_METRICS = ("fid", "precision-recall")
"""What a cell on images is measured with (classifier FID and precision/recall on digits' own classifier)."""
CELL_RECORD = "cell.json"
TRAINED_MARK = ".matrix-trained"
FLOOR_NAME = "floor.json"
SAID_REFUSALS = 6
"""Refused pairs named one per line as the matrix starts; the rest (a toy dataset refuses every image network) are
in the table."""
HEADLINE_NAMES = ("fid", "precision", "recall", "modes_covered", "modes_total", "high_quality_percent")


@dataclasses.dataclass
class DataChoice:
    """A dataset with parameters, as `--dataset NAME` or `--dataset NAME:PARAM=VALUE,PARAM=VALUE` names it."""

    text: str
    name: str
    params: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> DataChoice:
        name, _, rest = text.partition(":")
        params: dict[str, str] = {}
        for item in filter(None, rest.split(",")):
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise UserError(f"--dataset {text}: write parameters as NAME:PARAM=VALUE,PARAM=VALUE")
            params[key.strip()] = value.strip()
        if not name:
            raise UserError(f"--dataset {text!r}: name a dataset (see `gan list datasets`)")
        return cls(text, name, params)

    @property
    def slug(self) -> str:
        return "-".join([self.name, *(f"{k}-{v}" for k, v in self.params.items())]).replace("/", "-")

    def flags(self) -> list[str]:
        return ["--dataset", self.name, *[a for k, v in self.params.items() for a in ("-p", f"dataset.{k}={v}")]]


@dataclasses.dataclass
class Cell:
    arch: str
    objective: str
    data: DataChoice
    refused: str | None = None
    steps: int | None = None

    @property
    def slug(self) -> str:
        return f"{self.arch}-{self.objective}-{self.data.slug}"

    @property
    def label(self) -> str:
        return f"{self.arch} + {self.objective} on {self.data.text}"

    def command(self, run_dir: Path, seed: int) -> list[str]:
        steps = ["--steps", str(self.steps)] if self.steps else []
        return ["run", "--arch", self.arch, "--objective", self.objective, *self.data.flags(), *steps,
                "--seed", str(seed), "--out", str(run_dir)]


def plan_cells(registry: Any, archs: list[str], objectives: list[str], datasets: list[DataChoice],
               steps: int | None) -> list[Cell]:
    """Every pair on every dataset, each accepted or refused with the plan's one-line reason."""
    from ._plan import Settings, make_plan

    arch_names = archs or sorted(a.name for a in registry.components("architecture"))
    objective_names = objectives or sorted(o.name for o in registry.components("objective"))
    for name in arch_names:
        registry.get("architecture", name)
    for name in objective_names:
        registry.get("objective", name)
    cells = []
    for data in datasets:
        registry.get("dataset", data.name)
        for arch in arch_names:
            for objective in objective_names:
                cell = Cell(arch, objective, data, steps=steps)
                try:
                    settings = Settings(arch=arch, objective=objective, dataset=data.name, steps=steps,
                                        params={"dataset": dict(data.params)} if data.params else {})
                    make_plan(registry, settings, for_training=False)
                except UserError as error:
                    cell.refused = str(error)
                cells.append(cell)
    return cells


# -- running one cell -----------------------------------------------------------------------------------------------
def _run_gan(args: list[str], log: Path, threads: int) -> tuple[int, float, str]:
    """Run `gan ARGS` as a child process: (exit code, CPU seconds it used, its stdout); stderr goes to `log`."""
    command = [sys.executable, "-m", "gan_registry", *args]
    env = {**os.environ, threads_mod.ENV: str(threads)}
    with open(log, "a", encoding="utf-8") as err:
        err.write(f"$ gan {' '.join(args)}\n")
        err.flush()
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, env=env, text=True)
        with child.stdout:  # type: ignore[union-attr]
            out = child.stdout.read()  # type: ignore[union-attr]
        _, status, usage = os.wait4(child.pid, 0)  # the child's own CPU time, whatever else runs beside it
        child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, usage.ru_utime + usage.ru_stime, out


def _newest_grid(run_dir: Path) -> Path | None:
    pictures = sorted((run_dir / "samples").glob("*.png"), key=lambda p: p.stat().st_mtime_ns)
    return pictures[-1] if pictures else None


def _headline(report: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for metric in report.get("metrics", {}).values():
        for key, value in metric.items():
            if key in HEADLINE_NAMES and isinstance(value, (int, float)) and not isinstance(value, bool):
                values[key] = value
    return values


ALREADY_TRAINED = ("is already at step", "has already trained")
"""What `gan resume` says of a run at its end: one killed after its last step, before whoever ran it noted so."""


def train_to_the_end(run_dir: Path, new_run: list[str], run: Callable[[list[str]], int], log: Path,
                     more: tuple[str, ...] = ()) -> tuple[int, list[str]]:
    """Bring a run folder to its end by `run(args)`, a `gan` child writing to `log`: `gan resume` (with `more`)
    where it has a checkpoint, else `new_run` in the folder cleared of what a run killed before its first
    checkpoint left. A resume that finds the run already trained is done. The exit code and the arguments."""
    from .runs import RUN_FILES

    if (run_dir / "checkpoints" / "last.pt").is_file():
        args = ["resume", str(run_dir), *more, "--no-progress"]
        code = run(args)
        if code == 2 and any(said in last_error_line(log) for said in ALREADY_TRAINED):
            code = 0
        return code, args
    if run_dir.is_dir():  # nothing of a run without a checkpoint is worth keeping, and `gan run` wants a new folder
        for name in RUN_FILES:
            path = run_dir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    args = [*new_run, "--no-progress"]
    return run(args), args


def train_cell(cell: Cell, out: Path, seed: int, samples: int, metrics: tuple[str, ...], threads: int,
               floor: dict[str, Any]) -> dict[str, Any]:
    """Train (or go on training) one cell, measure it, and write its record; the record is returned."""
    run_dir = out / "cells" / cell.slug
    log = out / "logs" / f"{cell.slug}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    record_path = run_dir / CELL_RECORD
    spent = {"cpu": 0.0, "wall": 0.0}
    previous = read_record(record_path.with_suffix(".partial")) or {}
    spent["cpu"], spent["wall"] = previous.get("cpu_s", 0.0), previous.get("wall_s", 0.0)
    started = time.monotonic()

    def step(args: list[str]) -> tuple[int, str]:
        code, cpu, stdout = _run_gan(args, log, threads)
        spent["cpu"] += cpu
        return code, stdout

    def keep_spent() -> None:
        total = {"cpu_s": spent["cpu"], "wall_s": spent["wall"] + time.monotonic() - started}
        if run_dir.is_dir():
            write_record(record_path.with_suffix(".partial"), total)

    record = {"arch": cell.arch, "objective": cell.objective, "dataset": cell.data.text, "status": "failed",
              "run": str(Path("cells") / cell.slug), "command": "gan " + " ".join(cell.command(run_dir, seed)),
              "requested_steps": cell.steps}
    if not (run_dir / TRAINED_MARK).is_file():
        longer = ("--steps", str(cell.steps)) if cell.steps else ()
        code, _ = train_to_the_end(run_dir, cell.command(run_dir, seed), lambda args: step(args)[0], log, longer)
        keep_spent()
        if code != 0:
            record.update(reason=f"training exited {code}: {last_error_line(log)}")
            return _finish(record_path, record, spent, started)
        (run_dir / TRAINED_MARK).write_text("trained\n")
    train_cpu = spent["cpu"]
    code, stdout = step(["eval", str(run_dir), *[a for m in metrics for a in ("--metric", m)],
                         "--samples", str(samples), "--seed", str(seed), "--json"])
    if code != 0:
        record.update(status="diverged" if code == 2 else "failed",
                      reason=f"evaluation exited {code}: {last_error_line(log)}")
        return _finish(record_path, record, spent, started)
    report = json.loads(stdout)
    values = _headline(report)
    record.update(status="done", metrics=values, protocol=report.get("protocol", {}),
                  train_cpu_minutes=round(train_cpu / 60, 3))
    config = read_record(run_dir / "config.json") or {}
    record["steps"] = _trained_steps(run_dir)
    record["settings"] = {k: config.get("settings", {}).get(k) for k in ("steps", "epochs", "batch_size",
                                                                            "latent_dim", "lr_scale")}
    record.update(_against_floor(values, floor))
    grid = _newest_grid(run_dir)
    record["grid"] = str(grid.relative_to(out)) if grid else None
    return _finish(record_path, record, spent, started)


def _trained_steps(run_dir: Path) -> int | None:
    from .plots import read_log

    try:
        steps = [r["step"] for r in read_log(run_dir) if isinstance(r.get("step"), int)]
    except (OSError, UserError):
        return None
    return max(steps) if steps else None


def _against_floor(values: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    """The cell's FID as a multiple of the real-vs-real FID (and each shared figure beside its floor)."""
    found: dict[str, Any] = {}
    floors = floor.get("metrics", {})
    if floors:
        found["floor"] = floors
    if isinstance(values.get("fid"), (int, float)) and floors.get("fid"):
        found["fid_x_floor"] = round(values["fid"] / floors["fid"], 3)
    return found


def _finish(path: Path, record: dict[str, Any], spent: dict[str, float], started: float) -> dict[str, Any]:
    record["cpu_minutes"] = round(spent["cpu"] / 60, 3)
    record["wall_s"] = round(spent["wall"] + time.monotonic() - started, 1)
    if path.parent.is_dir():
        write_record(path, record)
        if record.get("status") == "done":
            path.with_suffix(".partial").unlink(missing_ok=True)
        else:  # a retry (an evaluation that failed, say) adds to what the cell already cost
            write_record(path.with_suffix(".partial"), {"cpu_s": spent["cpu"], "wall_s": record["wall_s"]})
    return record


# -- the floor ------------------------------------------------------------------------------------------------------
def floor_of(registry: Any, data: DataChoice, metrics: tuple[str, ...], samples: int, seed: int,
             say: Callable[[str], None]) -> dict[str, Any]:
    """The same measurement on real data: held-out images against the cells' reference for feature metrics (what
    `gan eval --real NAME --fake NAME:heldout` measures), real points against their dataset for sample metrics.
    Empty where the dataset has no second split to compare."""
    from . import evaluation

    if not metrics:  # sample metrics (mode coverage): real points score what the metric can give
        return _sample_floor(registry, data, samples, seed)
    say(f"measuring the real-vs-real floor of {data.text} ({', '.join(metrics)}; a dataset with its own classifier "
        "trains it once, ~1 min, then it is cached)")
    dataset, values, source = _data_source(registry, data)
    reference = evaluation.reference_of(dataset, values, source, None, "auto")  # what every cell is compared with
    try:
        other = evaluation.reference_of(dataset, values, source, None, "heldout")
        if other.describe == reference.describe:  # a large held-out split is the reference itself
            other = evaluation.reference_of(dataset, values, source, None, "train")
    except UserError as error:
        say(f"no floor for {data.text}: {error}")
        return {}
    evaluator = evaluation.Evaluator.choose(registry, metrics, {}, None, reference,
                                            default_extractor=dataset.extractor, seed=seed)
    evaluator.metrics = [m for m in evaluator.metrics if m.inputs == "features"]
    if not evaluator.metrics:
        return {}
    report = evaluator.measure(other, required=True)
    return {"metrics": _headline(report), "protocol": report.get("protocol", {}),
            "command": f"gan eval --real {data.name} --fake {data.name}:heldout "
                       + " ".join(f"--metric {m}" for m in metrics)}


def _data_source(registry: Any, data: DataChoice) -> tuple[Any, Any, Any]:
    from .plugins import blame

    dataset = registry.get("dataset", data.name)
    values = params_mod.build(dataset.params, dict(data.params), f"dataset '{dataset.name}'")
    with blame(dataset, "describing its data"):
        return dataset, values, dataset.factory(values, DataContext(registry=registry))


def _sample_floor(registry: Any, data: DataChoice, samples: int, seed: int) -> dict[str, Any]:
    import torch

    from . import evaluation

    _, _, source = _data_source(registry, data)
    real = source.load()
    real = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:samples]]
    evaluator = evaluation.Evaluator.choose(registry, (), {}, None, None, seed=seed)
    fake = evaluation.ImageSet(real, source.value_range, f"{len(real):,} real samples of {data.text}")
    try:
        report = evaluator.measure(fake, real, source, required=False)
    except UserError:
        return {}
    return {"metrics": _headline(report), "protocol": report.get("protocol", {}), "command": "real samples scored"}


# -- the whole matrix -----------------------------------------------------------------------------------------------
def default_workers(threads: int | None) -> int:
    return max(1, threads_mod.usable_cores() // (threads or 1))


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def matrix(dataset: str | list[str] | tuple[str, ...] = DEFAULT_DATASET, arch: list[str] | tuple[str, ...] = (),
           objective: list[str] | tuple[str, ...] = (), *, steps: int | None = None, out: str | Path | None = None,
           workers: int | None = None, threads: int | None = None, samples: int = DEFAULT_SAMPLES, seed: int = 0,
           metric: list[str] | tuple[str, ...] = (), registry: Any = None,
           say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train and measure every accepted pair (what `gan matrix` does); returns what matrix.json holds."""
    from .plugins import load_registry

    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    for name, value in (("steps", steps), ("workers", workers), ("threads", threads), ("samples", samples)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UserError(f"--{name} must be a positive integer, got {value!r}")
    datasets = [DataChoice.parse(d) for d in ([dataset] if isinstance(dataset, str) else list(dataset))]
    out = Path(out) if out is not None else Path("matrix") / "-".join(d.slug for d in datasets)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: not a folder")
    registry = registry if registry is not None else load_registry()
    cells = plan_cells(registry, list(arch), list(objective), datasets, steps)
    workers = workers or default_workers(threads)
    per_cell_threads = threads or max(1, threads_mod.usable_cores() // workers)
    with writing(out):
        (out / "cells").mkdir(exist_ok=True)
        return _run(registry, cells, datasets, out, steps, workers, per_cell_threads, samples, seed, tuple(metric), say)


def _run(registry: Any, cells: list[Cell], datasets: list[DataChoice], out: Path, steps: int | None, workers: int,
         threads: int, samples: int, seed: int, metric: tuple[str, ...], say: Callable[[str], None]) -> dict[str, Any]:
    accepted = [c for c in cells if c.refused is None]
    refused = [c for c in cells if c.refused]
    for cell in refused[:SAID_REFUSALS]:
        say(f"refused: {cell.label}: {cell.refused}")
    if len(refused) > SAID_REFUSALS:
        say(f"... and {len(refused) - SAID_REFUSALS} more refused pairs: the plan's reason for each is in matrix.json "
            f"and `gan matrix show {out}`")
    floors: dict[str, dict[str, Any]] = {}
    measured_with: dict[str, tuple[str, ...]] = {}
    for data in datasets:
        with_images = _takes_images(registry, data)
        measured_with[data.text] = metric or (IMAGE_METRICS if with_images else ())
        stored = (read_record(out / FLOOR_NAME) or {}).get(data.text)
        if stored and stored.get("samples") == samples and stored.get("with") == list(measured_with[data.text]):
            floors[data.text] = stored
        else:
            found = floor_of(registry, data, tuple(m for m in measured_with[data.text]) if with_images else (),
                             samples, seed, say)
            floors[data.text] = {**found, "samples": samples, "with": list(measured_with[data.text])}
            write_record(out / FLOOR_NAME, {**(read_record(out / FLOOR_NAME) or {}), data.text: floors[data.text]})
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for cell in accepted:
        done = read_record(out / "cells" / cell.slug / CELL_RECORD)
        if done and done.get("status") == "done" and done.get("requested_steps") == steps:
            records[cell.slug] = done
            continue
        if done and done.get("requested_steps") != steps:  # asked for another length: resume to it, measure again
            (out / "cells" / cell.slug / TRAINED_MARK).unlink(missing_ok=True)
        todo.append(cell)
    say(f"matrix: {len(accepted)} pairs accepted ({len(records)} already done, {len(todo)} to train), "
        f"{len(cells) - len(accepted)} refused; {_count(min(workers, max(1, len(todo))), 'process', 'processes')} x "
        f"{_count(threads, 'thread', 'threads')}; cells in {out / 'cells'}")
    began, finished = time.monotonic(), 0
    if todo:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_cell_job, cell, out, seed, samples, measured_with[cell.data.text], threads,
                                   floors[cell.data.text], say): cell for cell in todo}
            for future in as_completed(futures):
                cell = futures[future]
                record = future.result()
                records[cell.slug] = record
                finished += 1
                elapsed = time.monotonic() - began
                left = elapsed / finished * (len(todo) - finished)
                say(f"[{finished}/{len(todo)}] {cell.label}: {describe(record)}"
                    + (f"; about {_minutes(left)} left" if finished < len(todo) else ""))
    result = _summary(cells, records, floors, out, steps, samples, seed, threads, workers)
    write_outputs(out, result)
    say(f"matrix: {out / 'matrix.json'}, {out / 'matrix.csv'}, {out / 'heatmap.png'}, {out / 'contact-sheet.png'}")
    return result


def _cell_job(cell: Cell, out: Path, seed: int, samples: int, metrics: tuple[str, ...], threads: int,
              floor: dict[str, Any], say: Callable[[str], None]) -> dict[str, Any]:
    say(f"training {cell.label}{f' for {cell.steps} steps' if cell.steps else ' at its default budget'}"
        f" (log: {out / 'logs' / (cell.slug + '.log')})")
    return train_cell(cell, out, seed, samples, metrics, threads, floor)


def _takes_images(registry: Any, data: DataChoice) -> bool:
    return len(_data_source(registry, data)[2].sample_shape) == 3


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def describe(record: dict[str, Any]) -> str:
    """One line: the figures of a finished cell, or why it has none."""
    if record.get("status") != "done":
        return f"{record.get('status')}: {record.get('reason', '')}"
    m = record.get("metrics", {})
    parts = []
    if "fid" in m:
        parts.append(f"FID {m['fid']:.1f}" + (f" ({record['fid_x_floor']:.1f}x floor)" if "fid_x_floor" in record else ""))
    if "precision" in m:
        parts.append(f"P {m['precision']:.2f} R {m.get('recall', float('nan')):.2f}")
    if "modes_covered" in m:
        parts.append(f"modes {m['modes_covered']}/{m.get('modes_total', '?')}")
    if "high_quality_percent" in m:
        parts.append(f"HQ {m['high_quality_percent']:.0f}%")
    parts.append(f"{record.get('cpu_minutes', 0):.1f} CPU-min, {_minutes(record.get('wall_s', 0))}")
    return ", ".join(parts)


def _summary(cells: list[Cell], records: dict[str, dict[str, Any]], floors: dict[str, Any], out: Path,
             steps: int | None, samples: int, seed: int, threads: int, workers: int) -> dict[str, Any]:
    rows = []
    for cell in cells:
        if cell.refused is not None:
            rows.append({"arch": cell.arch, "objective": cell.objective, "dataset": cell.data.text,
                         "status": "refused", "reason": cell.refused})
        else:
            rows.append(records[cell.slug])
    return {"format": 1, "gan_registry": __version__, "steps": steps, "samples": samples, "seed": seed,
            "threads_per_cell": threads, "workers": workers, "floors": floors, "cells": rows}


# -- outputs --------------------------------------------------------------------------------------------------------
CSV_COLUMNS = ("dataset", "arch", "objective", "status", "steps", "fid", "fid_floor", "fid_x_floor", "precision",
               "recall", "modes_covered", "modes_total", "high_quality_percent", "cpu_minutes", "wall_s", "command",
               "reason")


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    m = row.get("metrics", {})
    return {"dataset": row.get("dataset"), "arch": row.get("arch"), "objective": row.get("objective"),
            "status": row.get("status"), "steps": row.get("steps"), **{k: m.get(k) for k in HEADLINE_NAMES},
            "fid_floor": row.get("floor", {}).get("fid"), "fid_x_floor": row.get("fid_x_floor"),
            "cpu_minutes": row.get("cpu_minutes"), "wall_s": row.get("wall_s"), "command": row.get("command"),
            "reason": row.get("reason")}


def write_outputs(out: Path, result: dict[str, Any]) -> None:
    write_record(out / "matrix.json", result)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in result["cells"]:
        writer.writerow(_flat(row))
    with replacing(out / "matrix.csv", str(out / "matrix.csv"), kept="") as (f, _):
        f.write(text.getvalue().encode())

    matrix_pictures.heatmap(result, out / "heatmap.png")
    matrix_pictures.contact_sheet(result, out, out / "contact-sheet.png")


def read(out: Path) -> dict[str, Any]:
    """A matrix folder's matrix.json, checked enough to print."""
    path = Path(out) / "matrix.json"
    if not path.is_file():
        raise UserError(f"{out} holds no matrix.json (make one with `gan matrix --out {out}`)")
    try:
        result = json.loads(read_text(path, limit=64 * 2**20))
    except ValueError as error:
        raise UserError(f"{path}: not a matrix file ({error})") from None
    if not isinstance(result, dict) or not isinstance(result.get("cells"), list) or \
            not all(isinstance(c, dict) for c in result["cells"]):
        raise UserError(f"{path}: not a matrix file (no list of cells)")
    return result


def _number(value: Any, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _short_command(row: dict[str, Any]) -> str:
    command = str(row.get("command") or "")
    return "`" + command.split(" --seed ")[0].split(" --out ")[0] + "`" if command else "-"


def table(result: dict[str, Any], commands: bool = False) -> str:
    """The matrix as a Markdown table: one row a cell (with the command that trains it, if asked), refused pairs
    last with their reason."""
    lines = ["| dataset | arch | objective | steps | FID | ÷ floor | P | R | modes | HQ % | CPU-min | wall |"
             + (" command |" if commands else ""),
             "|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if commands else "")]
    refused = []
    for row in result["cells"]:
        if row.get("status") == "refused":
            refused.append(f"- {row.get('arch')} + {row.get('objective')} on {row.get('dataset')}: refused: "
                           f"{row.get('reason')}")
            continue
        f = _flat(row)
        modes = f"{f['modes_covered']}/{f['modes_total']}" if f["modes_covered"] is not None else "-"
        status = "" if row.get("status") == "done" else f" ({row.get('status')}: {str(row.get('reason'))[:80]})"
        lines.append(f"| {f['dataset']} | {f['arch']} | {f['objective']}{status} | {f['steps'] or '-'} | "
                     f"{_number(f['fid'])} | {_number(f['fid_x_floor'])} | {_number(f['precision'], 2)} | "
                     f"{_number(f['recall'], 2)} | {modes} | {_number(f['high_quality_percent'], 0)} | "
                     f"{_number(f['cpu_minutes'])} | {_minutes(f['wall_s']) if f['wall_s'] is not None else '-'} |"
                     + (f" {_short_command(row)} |" if commands else ""))
    floors = [f"- floor of {name}: " + ", ".join(f"{k} {_number(v, 2)}" for k, v in floor.get("metrics", {}).items())
              + (f" (`{floor['command']}`)" if floor.get("command") else "")
              for name, floor in result.get("floors", {}).items() if floor.get("metrics")]
    return "\n".join(lines + ([""] + floors if floors else []) + ([""] + refused if refused else [])) + "\n"
