"""What a study found: every trial with its state, the best ones with a command that trains them again, and the
pictures (`gan study show`, `gan study best`, `Study.best`).

Layer: services and duties (docs/architecture.md).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

# optuna at module level: only the study commands load this module (through _study).
import optuna
from optuna.trial import TrialState

from . import _study
from .errors import UserError

TOP = 5
"""Best trials `gan study show` lists."""
PICTURES = ("history.png", "importance.png", "slice.png", "seeds.png")


def _row(trial: Any) -> dict[str, Any]:
    attrs = trial.user_attrs
    row = {"number": trial.number, "state": trial.state.name, "params": dict(trial.params), "value": trial.value,
           "std": attrs.get("std"), "values": attrs.get("values"), "runs": attrs.get("runs", []),
           "command": attrs.get("command")}
    if attrs.get("reason"):
        row["reason"] = attrs["reason"]
    retried = trial.system_attrs.get("failed_trial")
    if retried is not None:
        row["retries"] = retried
    if trial.datetime_start and trial.datetime_complete:
        row["duration_s"] = round((trial.datetime_complete - trial.datetime_start).total_seconds(), 1)
    return row


def summary(folder: Path) -> dict[str, Any]:
    """A study folder's trials and its best one (None while no trial is COMPLETE), as `gan study show --json`
    prints them."""
    spec, study, record = _study.load(Path(folder))
    rows = [_row(t) for t in study.get_trials(deepcopy=False)]
    complete = [r for r in rows if r["state"] == TrialState.COMPLETE.name]
    ranked = sorted(complete, key=lambda r: r["value"], reverse=spec.direction == "maximize")
    return {"study": spec.name, "target": spec.target, "direction": spec.direction, "seeds": spec.seeds,
            "trials_asked": spec.trials, "complete": len(complete), "storage": record.get("storage"),
            "trials": rows, "best": ranked[0] if ranked else None, "top": [r["number"] for r in ranked[:TOP]]}


def _value(row: dict[str, Any]) -> str:
    if row["value"] is None:
        return "-"
    spread = f" ± {row['std']:.2g}" if row.get("values") and len(row["values"]) > 1 else ""
    return f"{row['value']:.4g}{spread}"


def table(folder: Path) -> str:
    """The best trials as a Markdown table, the counts by state, and the best trial's command."""
    result = summary(folder)
    counts: dict[str, int] = {}
    for row in result["trials"]:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    by_state = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no trials yet"
    lines = [f"study {result['study']}: {result['complete']}/{result['trials_asked']} COMPLETE trials of "
             f"{result['target']} ({result['direction']}); {by_state}"]
    rows = {r["number"]: r for r in result["trials"]}
    top = [rows[n] for n in result["top"]]
    if top:
        keys = list(top[0]["params"])
        seeds = f" (mean ± std, {result['seeds']} seeds)" if result["seeds"] > 1 else ""
        lines += ["", f"| trial | {' | '.join(keys)} | {result['target']}{seeds} | run |",
                  "|---" * (len(keys) + 3) + "|"]
        for row in top:
            shown = " | ".join(_text(row["params"].get(k)) for k in keys)
            lines.append(f"| {row['number']} | {shown} | {_value(row)} | {(row['runs'] or ['-'])[0]} |")
        best = result["best"]
        lines += ["", f"best: trial {best['number']}, {result['target']} {_value(best)}; trains again with:",
                  f"  {best['command']}"]
    for row in result["trials"]:
        if row["state"] == TrialState.FAIL.name and row.get("reason"):
            lines.append(f"trial {row['number']} failed: {row['reason']}")
    return "\n".join(lines) + "\n"


def _text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# -- pictures -------------------------------------------------------------------------------------------------------
def draw(folder: Path, say: Any = None) -> list[Path]:
    """The study's pictures in its folder: the target over trials, parameter importance (fANOVA; with two
    COMPLETE trials, two parameters that vary and targets that differ), a slice plot, and with several seeds a box of
    the target per configuration (Lucic et al.'s way of telling a setting from a lucky seed). Returns those written;
    `say` hears why one was not."""
    import matplotlib  # ~0.9 s with pyplot: `gan study show --json` with --no-pictures needs none

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    folder = Path(folder)
    spec, study, _ = _study.load(folder)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    varying = [k for k in spec.search if len({repr(t.params.get(k)) for t in complete}) > 1]
    drawings = [("history.png", lambda: optuna_plots.plot_optimization_history(study, target_name=spec.target)),
                ("slice.png", lambda: optuna_plots.plot_slice(study, target_name=spec.target))]
    if len(complete) < 2 or len(varying) < 2 or len({t.value for t in complete}) < 2:
        (say or print)("importance.png: not drawn; fANOVA needs two COMPLETE trials, two parameters that vary and "
                       "targets that differ")
    else:
        fanova = optuna.importance.FanovaImportanceEvaluator(seed=0)
        drawings.append(("importance.png", lambda: optuna_plots.plot_param_importances(study, evaluator=fanova,
                                                                                        params=varying)))
    written = []
    for name, drawing in drawings:
        with warnings.catch_warnings():  # "experimental" and "few trials" notes: the pictures say what they can
            warnings.simplefilter("ignore")
            try:
                axes = drawing()
            except (RuntimeError, ValueError) as error:  # fANOVA's forest can still find no variance to split
                (say or print)(f"{name}: not drawn; {error}")
                continue
        figure = _figure_of(axes)
        figure.savefig(folder / name, dpi=110, bbox_inches="tight")
        plt.close(figure)
        written.append(folder / name)
    if spec.seeds > 1:
        written.append(_seed_boxes(complete, spec, folder / "seeds.png"))
    return written


def _figure_of(axes: Any) -> Any:
    first = axes.flat[0] if hasattr(axes, "flat") else axes
    return first.figure


def _seed_boxes(trials: list[Any], spec: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    ranked = sorted(trials, key=lambda t: t.value, reverse=spec.direction == "maximize")
    figure, axes = plt.subplots(figsize=(max(4.0, 0.6 * len(ranked) + 2), 4))
    axes.boxplot([t.user_attrs.get("values") or [t.value] for t in ranked], showmeans=True)
    axes.set_xticks(range(1, len(ranked) + 1), [str(t.number) for t in ranked])
    axes.set_xlabel(f"trial (best first; {spec.seeds} seeds each)")
    axes.set_ylabel(spec.target)
    axes.set_title("target over seeds per configuration")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def best(folder: Path) -> dict[str, Any]:
    found = summary(folder)["best"]
    if found is None:
        raise UserError(f"{folder}: no COMPLETE trial yet")
    return found

