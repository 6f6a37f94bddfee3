"""The combination matrix's pictures: a heat map of each cell against the floor, and a contact sheet of the grids.

Layer: services and duties (docs/architecture.md).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

GOAL = 3.0
"""A cell is on target within this multiple of the real-vs-real floor (the issue's bar for every cell)."""


def against_floor(row: dict[str, Any]) -> float | None:
    """How far a cell is from real data, as a multiple: FID ÷ the floor's FID; on the toys, modes there ÷ modes
    found, times the real points' high-quality share ÷ the samples' (8/8 modes with a third of the samples near a
    mode is 3x)."""
    if isinstance(row.get("fid_x_floor"), (int, float)):
        return float(row["fid_x_floor"])
    m, floor = row.get("metrics", {}), row.get("floor", {})
    if not (isinstance(m.get("modes_total"), (int, float)) and isinstance(m.get("modes_covered"), (int, float))):
        return None
    multiple = m["modes_total"] / max(m["modes_covered"], 0.5)
    if isinstance(m.get("high_quality_percent"), (int, float)) and floor.get("high_quality_percent"):
        multiple *= floor["high_quality_percent"] / max(m["high_quality_percent"], 1.0)
    return multiple


def _text(row: dict[str, Any]) -> str:
    status = row.get("status")
    if status != "done":
        return str(status)
    m = row.get("metrics", {})
    if "fid_x_floor" in row:
        return f"{row['fid_x_floor']:.1f}x\nFID {m.get('fid', float('nan')):.0f}"
    if "modes_covered" in m:
        return f"{m['modes_covered']}/{m.get('modes_total', '?')}" + (
            f"\n{m['high_quality_percent']:.0f}% HQ" if "high_quality_percent" in m else "")
    return "done"


def _plt():
    import matplotlib  # ~0.9 s with pyplot: `gan matrix show` loads this module (through _matrix) and draws nothing

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def heatmap(result: dict[str, Any], out: Path) -> Path:
    """One panel per dataset: architectures down, objectives across, each cell coloured by its multiple of the
    floor on a log scale (green within the goal); refused pairs hatched grey, failed ones black."""
    from matplotlib.colors import LogNorm

    plt = _plt()
    cells = result["cells"]
    datasets = list(dict.fromkeys(c.get("dataset") for c in cells)) or ["-"]
    objectives = sorted({c.get("objective") for c in cells})
    # an architecture every objective refuses on a dataset (an image network on 2D points) gets no row there
    rows = {name: sorted({c.get("arch") for c in cells if c.get("dataset") == name and c.get("status") != "refused"})
            or sorted({c.get("arch") for c in cells if c.get("dataset") == name}) for name in datasets}
    width = max(4.0, 1.1 * len(objectives) + 2)
    heights = [0.7 * len(rows[name]) + 1.4 for name in datasets]
    fig, axes = plt.subplots(len(datasets), 1, figsize=(width, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights, "hspace": 0.6})
    norm = LogNorm(vmin=1, vmax=30)
    cmap = plt.get_cmap("RdYlGn_r")
    for ax, name in zip(axes[:, 0], datasets):
        archs = rows[name]
        ax.set_xlim(0, len(objectives))
        ax.set_ylim(len(archs), 0)
        for c in (c for c in cells if c.get("dataset") == name and c.get("arch") in archs):
            x, y = objectives.index(c.get("objective")), archs.index(c.get("arch"))
            value = against_floor(c) if c.get("status") == "done" else None
            if c.get("status") == "refused":
                face, hatch, ink = "#dddddd", "//", "#666666"
            elif value is None:
                face, hatch, ink = "#222222", None, "white"
            else:
                face, hatch, ink = cmap(norm(min(max(value, 1.0), 30.0))), None, "black"
            ax.add_patch(plt.Rectangle((x, y), 1, 1, facecolor=face, hatch=hatch, edgecolor="white", linewidth=2))
            ax.text(x + 0.5, y + 0.5, _text(c), ha="center", va="center", fontsize=7, color=ink)
        ax.set_xticks([i + 0.5 for i in range(len(objectives))], objectives, rotation=30, ha="right", fontsize=8)
        ax.set_yticks([i + 0.5 for i in range(len(archs))], archs, fontsize=8)
        ax.set_title(f"{name}: x real-vs-real floor (goal <= {GOAL:g}x)", fontsize=9)
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(mappable, ax=list(axes[:, 0]), fraction=0.04, pad=0.02, label="x floor (log)")
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def contact_sheet(result: dict[str, Any], folder: Path, out: Path, per_row: int = 6) -> Path:
    """Every finished cell's last sample grid, titled with its pair and figures."""
    from PIL import Image

    plt = _plt()
    shown = [c for c in result["cells"] if c.get("grid") and (folder / c["grid"]).is_file()]
    columns = max(1, min(per_row, len(shown)))
    rows = max(1, math.ceil(len(shown) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, c in zip(axes.flat, shown):
        with Image.open(folder / c["grid"]) as picture:
            ax.imshow(picture.convert("RGB"))
        figure = _text(c).replace("\n", ", ")
        ax.set_title(f"{c.get('arch')} + {c.get('objective')}\n{c.get('dataset')}: {figure}", fontsize=7)
    if not shown:
        axes.flat[0].text(0.5, 0.5, "no finished cell yet", ha="center", va="center")
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out
