"""Draw the r3gan networks' stages to docs/images/architectures/r3gan.png.

    python docs/_architectures/draw_r3gan.py

The layout comes from the plugin itself (`gan_registry_r3gan.resolve_stages`), for the CPU-sized defaults and the
cifar10 preset at 32 px, so the picture cannot show stages the code does not build.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "images" / "architectures" / "r3gan.png"

X0 = 1.7  # where the first stage's transition starts
G_COLOUR, D_COLOUR, T_COLOUR, IO_COLOUR = "#9ecae1", "#fdae6b", "#d9d9d9", "#ffffff"


def layouts(side: int = 32):
    import gan_registry_r3gan as r3gan

    default = r3gan.resolve_stages(r3gan.GeneratorParams(), side)
    preset = r3gan.resolve_stages(r3gan.GeneratorParams(preset="cifar10"), side)
    return default, preset


def _box(ax, x, y, w, h, text, colour, size=8.5, weight="normal"):
    import matplotlib.pyplot as plt

    ax.add_patch(plt.Rectangle((x, y), w, h, facecolor=colour, edgecolor="#333333", linewidth=0.8))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight)


def _arrow(ax, x0, y0, x1, y1):
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", color="#333333", lw=0.9))


def _stage_text(side, stages, preset, i, role):
    return (f"{side}x{side}\n{role}: {stages.blocks[i]} block{'s' if stages.blocks[i] != 1 else ''}\n"
            f"width {stages.widths[i]}, {stages.cardinality[i]} groups\n"
            f"cifar10: {preset.widths[i]}, x{preset.blocks[i]}, {preset.cardinality[i]} gr.")


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    default, preset = layouts()
    n = len(default.widths)
    sides = [4 * 2 ** i for i in range(n)]
    fig, ax = plt.subplots(figsize=(15, 6.9))
    stage_w, stage_h, gap, trans_w = 2.1, 1.35, 0.25, 1.25
    step = stage_w + trans_w + 2 * gap

    # generator, left to right: z -> basis -> stage -> (1x1?, up) -> stage ... -> aggregation -> image
    y = 4.4
    ax.text(-0.1, y + stage_h + 0.35, "Generator", fontsize=12, weight="bold")
    _box(ax, -0.1, y + 0.2, 1.5, 0.95, "z (64)\n[+ class\nembedding (64)]", IO_COLOUR, 8)
    x = X0
    _arrow(ax, 1.4, y + 0.67, x, y + 0.67)
    for i in range(n):
        if i == 0:
            _box(ax, x, y + 0.1, trans_w, stage_h - 0.2, "generative\nbasis 4x4\n(basis x\nLinear(z))", T_COLOUR, 8)
        else:
            text = "1x1 conv\n(if width\nchanges)\n↑ x2 [1,2,1]"
            _box(ax, x, y + 0.1, trans_w, stage_h - 0.2, text, T_COLOUR, 8)
        _arrow(ax, x + trans_w, y + 0.67, x + trans_w + gap, y + 0.67)
        _box(ax, x + trans_w + gap, y, stage_w, stage_h, _stage_text(sides[i], default, preset, i, "G"), G_COLOUR, 8)
        if i < n - 1:
            _arrow(ax, x + trans_w + gap + stage_w, y + 0.67, x + step, y + 0.67)
        x += step
    x -= gap
    _arrow(ax, x, y + 0.67, x + gap, y + 0.67)
    _box(ax, x + gap, y + 0.15, 1.2, stage_h - 0.3, "1x1 conv\nto C\n→ Tanh\n(data range)", T_COLOUR, 8)

    # discriminator, right to left under it: image -> 1x1 extraction -> stage -> down (1x1?) -> ... -> basis -> score
    y = 2.1
    ax.text(-0.1, y + stage_h + 0.35, "Discriminator (the generator mirrored, read right to left)", fontsize=12,
            weight="bold")
    x = X0
    for i in range(n):  # drawn at the same x as the generator's stage of the same side
        if i == 0:
            _box(ax, x, y + 0.1, trans_w, stage_h - 0.2, "discrimina-\ntive basis:\n4x4 depth-\nwise, Linear", T_COLOUR,
                 8)
        else:
            _box(ax, x, y + 0.1, trans_w, stage_h - 0.2, "↓ x2 [1,2,1]\n1x1 conv\n(if width\nchanges)", T_COLOUR, 8)
        _arrow(ax, x + trans_w + gap, y + 0.67, x + trans_w, y + 0.67)
        _box(ax, x + trans_w + gap, y, stage_w, stage_h, _stage_text(sides[i], default, preset, i, "D"), D_COLOUR, 8)
        if i < n - 1:
            _arrow(ax, x + step, y + 0.67, x + trans_w + gap + stage_w, y + 0.67)
        x += step
    x -= gap
    _arrow(ax, x + gap, y + 0.67, x, y + 0.67)
    _box(ax, x + gap, y + 0.15, 1.2, stage_h - 0.3, "image\nC x 32 x 32\n→ 1x1 conv", IO_COLOUR, 8)
    _arrow(ax, X0, y + 0.67, 1.4, y + 0.67)
    _box(ax, -0.1, y + 0.2, 1.5, 0.95, "score\n[or <features,\nclass emb.>]", IO_COLOUR, 8)

    # the residual block
    y, x = 0.0, X0
    ax.text(-0.1, y + 1.35, "Residual block (every stage; no normalisation)", fontsize=12, weight="bold")
    parts = [("1x1 conv\nwidth → width x 2", "#c7e9c0"), ("bias +\nleaky ReLU 0.2", "#f0f0f0"),
             ("grouped 3x3\n(cardinality\ngroups)", "#c7e9c0"), ("bias +\nleaky ReLU 0.2", "#f0f0f0"),
             ("1x1 conv\n→ width\n(zero at init)", "#c7e9c0")]
    for j, (text, colour) in enumerate(parts):
        _box(ax, x + j * 2.1, y, 1.7, 1.0, text, colour, 8)
        if j:
            _arrow(ax, x + j * 2.1 - 0.4, y + 0.5, x + j * 2.1, y + 0.5)
    end = x + 4 * 2.1 + 1.7
    _box(ax, end + 0.4, y + 0.25, 0.5, 0.5, "+", IO_COLOUR, 12, "bold")
    _arrow(ax, end, y + 0.5, end + 0.4, y + 0.5)
    ax.plot([x - 0.3, x - 0.3, end + 0.65, end + 0.65], [y + 0.5, y - 0.3, y - 0.3, y + 0.25], color="#333333", lw=0.9)
    _arrow(ax, x - 0.3, y + 0.5, x, y + 0.5)
    ax.text(end + 1.2, y + 0.5, "He init of the first two convs x\n"
                                "sqrt(2/1.04) x L^(-1/4), L = blocks in the net:\n"
                                "each block is the identity at init", fontsize=8.5, va="center")

    ax.set_xlim(-0.3, X0 + n * step + 1.3)
    ax.set_ylim(-0.6, 6.4)
    ax.axis("off")
    ax.set_title("r3gan at 32 px: the CPU-sized defaults (first lines) and the cifar10 preset (last line)",
                 fontsize=12)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110, bbox_inches="tight")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
