"""Reading run logs back: `gan plot` (loss and metric curves of runs on shared axes) and `gan runs` (a table).

Layer: services and duties (docs/architecture.md).
"""
from __future__ import annotations

import fnmatch
import json
import math
from pathlib import Path
from typing import Any

from ._files import read_bytes
from .errors import UserError
from .runs import CONFIG_NAME, read_config

LOG_NAME = "metrics.jsonl"
SMOOTHING = 0.6
"""TensorBoard's default weight of its exponential smoothing."""


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl (log lines and evaluations), in order; a torn last line is skipped."""
    read_config(run_dir)  # a clear error for a folder that is not a run
    path = Path(run_dir) / LOG_NAME
    if not path.exists():
        raise UserError(f"{run_dir} has no {LOG_NAME} yet: it has not logged a step")
    try:
        text = read_bytes(path).decode("utf-8", "replace")
    except OSError as error:
        raise UserError(f"{path} cannot be read: {error.strerror or error}") from None
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue  # a run killed mid-write leaves half a line; a crafted one is no record either
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return records


def smooth(values: list[float], weight: float = SMOOTHING) -> list[float]:
    """TensorBoard's debiased exponential moving average: the first points are not pulled towards zero."""
    out, average, debias = [], 0.0, 0.0
    for value in values:
        if not math.isfinite(value):
            out.append(value)
            continue
        average = weight * average + (1 - weight) * value
        debias = weight * debias + (1 - weight)
        out.append(average / debias)
    return out


def series(records: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for record in records:
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            steps.append(record["step"])
            values.append(float(value))
    return steps, values


def default_keys(logs: list[list[dict[str, Any]]]) -> list[str]:
    """Every loss, then every metric measured during training, in the order the runs first logged them."""
    seen: dict[str, None] = {}
    for records in logs:
        for record in records:
            seen.update((key, None) for key in record)
    keys = list(seen)
    return ([k for k in keys if k.startswith("loss/")]
            + [k for k in keys if k.startswith("eval/") and k != "eval/best_step"])


def choose_keys(logs: list[list[dict[str, Any]]], patterns: tuple[str, ...]) -> list[str]:
    if not patterns:
        keys = default_keys(logs)
        if not keys:
            raise UserError("the runs logged no losses yet")
        return keys
    logged = {key for records in logs for record in records for key in record} - {"step"}
    keys = []
    for pattern in patterns:
        matched = sorted(k for k in logged if fnmatch.fnmatchcase(k, pattern))
        if not matched:
            raise UserError(f"--key {pattern}: no run logged it (logged: {', '.join(sorted(logged))})")
        keys += [k for k in matched if k not in keys]
    return keys


def run_labels(run_dirs: list[Path]) -> list[str]:
    """Folder names, made unique with their parents where two runs share one."""
    labels = [Path(d).resolve().name for d in run_dirs]
    for i, label in enumerate(labels):
        if labels.count(label) > 1:
            labels[i] = str(Path(run_dirs[i]))
    return labels


def plot(run_dirs: list[Path], out: Path, keys: tuple[str, ...] = (), weight: float = SMOOTHING) -> Path:
    """Curves of `keys` (default: losses and metrics) of every run, a panel per key shared by all runs: each run's
    raw curve faint and its smoothed curve over it, in one colour per run."""
    if Path(out).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UserError(f"-o {out}: use a .png, .svg or .pdf file name")
    if not 0 <= weight < 1:
        raise UserError(f"--smooth is a weight in [0, 1), got {weight}")
    logs = [read_log(d) for d in run_dirs]
    chosen = choose_keys(logs, keys)
    import matplotlib  # ~0.9 s with pyplot: only drawing needs it; `gan runs` and the matrix read logs through here

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    columns = min(3, len(chosen))
    rows = math.ceil(len(chosen) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False, sharex=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for panel, key in zip(axes.flat, chosen):
        for i, (records, label) in enumerate(zip(logs, run_labels(run_dirs))):
            steps, values = series(records, key)
            if not steps:
                continue
            colour = colours[i % len(colours)]
            if key.startswith("eval/"):  # few points, each a measurement: shown as they are
                panel.plot(steps, values, "o-", color=colour, label=label, markersize=3)
            else:
                panel.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8)
                panel.plot(steps, smooth(values, weight), color=colour, label=label, linewidth=1.6)
        panel.set_title(key, fontsize=10)
        panel.grid(alpha=0.3)
    for panel in axes[-1]:
        panel.set_xlabel("step")
    for panel in list(axes.flat)[len(chosen):]:
        panel.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    figure.tight_layout()
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, dpi=110)
    except OSError as error:
        raise UserError(f"-o {out}: cannot write it ({error.strerror or error})") from None
    finally:
        plt.close(figure)
    return out


def _subfolders(folder: Path) -> list[Path]:
    """Its visible subfolders (links to folders too); none where it cannot be listed."""
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir())
    except OSError:
        return []


def _is_run(folder: Path) -> bool:
    try:
        return (folder / CONFIG_NAME).is_file()
    except OSError:
        return False


def find_runs(root: Path, depth: int = 3) -> list[Path]:
    """Run folders (those with a config.json) at or under `root`, at most `depth` levels down, sorted. A link to a
    run is listed; a link to any other folder is not walked (one to / would walk the whole machine)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"no folder at {root}")
    found, frontier = [], [root]
    for _ in range(depth + 1):
        below = []
        for folder in frontier:
            if _is_run(folder):
                found.append(folder)  # a run's own subfolders hold no runs
            elif folder == root or not folder.is_symlink():
                below += _subfolders(folder)
        frontier = below
    return sorted(found)


def summarise(run_dir: Path) -> dict[str, Any]:
    """A run's combination, progress and measurements, from its config and log (no checkpoint is read);
    a run whose config cannot be read is listed as unreadable, with why."""
    try:
        settings = read_config(run_dir)["settings"]
    except UserError as error:
        return {"run": str(run_dir), "combination": f"unreadable: {error}", "step": 0, "steps": None,
                "epochs": None, "last_metric": None, "best_metric": None, "unreadable": True}
    try:
        records = read_log(run_dir)
    except UserError:
        records = []
    combination = f"{settings.get('arch')} + {settings.get('objective')} on {settings.get('dataset')}"
    for piece in ("generator", "discriminator"):
        if settings.get(piece):
            combination += f" ({piece} {settings[piece]})"
    if settings.get("conditional"):
        combination += ", conditional"
    evaluations = [r for r in records if any(k.startswith(("eval/", "final/")) for k in r)]
    summary: dict[str, Any] = {
        "run": str(run_dir), "combination": combination,
        "step": max((r["step"] for r in records), default=0),
        "steps": settings.get("steps"), "epochs": settings.get("epochs"),
        "last_metric": None, "best_metric": None,
    }
    measured = [(r["step"], k.split("/", 1)[1], v) for r in evaluations for k, v in r.items()
                if k.startswith(("eval/", "final/")) and k != "eval/best_step" and isinstance(v, (int, float))]
    if measured:
        first_key = measured[0][1]  # the metric that picks best.pt
        step, key, value = [m for m in measured if m[1] == first_key][-1]
        summary["last_metric"] = {"key": key, "value": value, "step": step}
        best_steps = [r["eval/best_step"] for r in evaluations if "eval/best_step" in r]
        if best_steps:
            at_best = [(s, v) for s, k, v in measured if k == first_key and s == best_steps[-1]]
            if at_best:
                summary["best_metric"] = {"key": first_key, "value": at_best[0][1], "step": at_best[0][0]}
    return summary


def runs_table(summaries: list[dict[str, Any]]) -> str:
    def metric(m):
        return "-" if m is None else f"{m['key']} {m['value']:.4g} @{m['step']}"

    def target(s):
        return f"/{s['steps']}" if s["steps"] else (f" ({s['epochs']} epochs)" if s["epochs"] else "")

    rows = [("run", "combination", "step", "last metric", "best metric")]
    rows += [(s["run"], s["combination"], f"{s['step']}{target(s)}", metric(s["last_metric"]), metric(s["best_metric"]))
             for s in summaries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
