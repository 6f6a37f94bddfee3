"""Draw the core's layers, as pyproject.toml's import-linter contract states them, to docs/images/architecture/.

    python docs/_architecture/draw_layers.py

The picture is made from the contract the tests check, so the page cannot show a layering the code does not keep.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "images" / "architecture" / "layers.png"

NAMES = {  # the contract lists layers top first; a short name and what each is for
    0: ("front ends", "the command line, the plugin scaffold, test helpers"),
    1: ("api", "Run, the one owner of a run's life (new, reopen, train), load_plugins, matrix"),
    2: ("services and duties", "the core's callbacks and loggers, evaluation, sampling, export, pictures, plots, the matrix"),
    3: ("run storage", "the run folder: config, checkpoints on disk, the writer's lock, undoing an unfinished run"),
    4: ("engine", "the training loop, data on the device, speed, distributed training"),
    5: ("plan", "resolve the chosen components and settings, check they fit"),
    6: ("primitives", "checkpoint I/O and random states, labels, threads, reading untrusted files, grids"),
    7: ("registry", "entry-point loading, the registry of components"),
    8: ("contracts", "errors, component types, protocols, hook specs, parameters, shared layers"),
}


def layers() -> list[list[str]]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    return [[m.strip() for m in layer.replace("|", ":").split(":")] for layer in contract["layers"]]


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = layers()
    fig, ax = plt.subplots(figsize=(13.5, 0.78 * len(rows) + 0.8))
    colours = plt.get_cmap("viridis")
    for i, modules in enumerate(rows):
        y = len(rows) - 1 - i
        name, why = NAMES.get(i, (f"layer {i}", ""))
        ax.add_patch(plt.Rectangle((0, y + 0.06), 13, 0.88, color=colours(0.15 + 0.75 * i / len(rows)), alpha=0.35))
        ax.text(0.15, y + 0.62, name, fontsize=11, weight="bold", va="center")
        ax.text(0.15, y + 0.28, why, fontsize=8.5, va="center", color="#333")
        ax.text(12.85, y + 0.5, "  ".join(modules), fontsize=9, va="center", ha="right", family="monospace")
    ax.annotate("", xy=(13.35, 0.2), xytext=(13.35, len(rows) - 0.2),
                arrowprops={"arrowstyle": "->", "lw": 1.5, "color": "#555"})
    ax.text(13.5, len(rows) / 2, "imports go down only\n(checked by import-linter,\nimports inside functions too)",
            rotation=90, va="center", ha="left", fontsize=9, color="#555")
    ax.set_xlim(0, 14.2)
    ax.set_ylim(0, len(rows))
    ax.axis("off")
    ax.set_title("gan_registry's layers, bottom to top (pyproject.toml [tool.importlinter])", fontsize=12)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110, bbox_inches="tight")
    print(OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
