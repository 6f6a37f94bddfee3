"""Draw the stylegan2 architecture's stages to docs/images/architectures/stylegan2.png.

    python docs/_architectures/draw_stylegan2.py            # a digits run: 32 px, 1 channel, the default widths
    python docs/_architectures/draw_stylegan2.py --side 64 --channels 3

The widths and the number of blocks are read from the networks the plugin builds (with its default parameters), so
the picture cannot show a layout the code does not have.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "images" / "architectures" / "stylegan2.png"

MAPPING, SYNTHESIS, RGB, DISC, NOTE = "#cfe2f3", "#d9ead3", "#fce5cd", "#ead1dc", "#eeeeee"


def networks(side: int, channels: int):
    import torch

    import gan_registry_stylegan2 as sg
    from gan_registry import NetworkSpec

    spec = NetworkSpec((channels, side, side), 128, (-1.0, 1.0))
    with torch.device("meta"):  # shapes only
        g = sg.build_generator(sg.GeneratorParams(), spec)
        d = sg.build_discriminator(sg.DiscriminatorParams(), spec)
    return g, d


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g, d = networks(args.side, args.channels)
    blocks = list(g.synthesis.blocks)
    rows = len(blocks)
    height = 2.2 + 1.25 * rows + 1.6
    fig, ax = plt.subplots(figsize=(15, height * 0.62))

    def box(x, y, w, h, text, colour, size=8.5, weight="normal"):
        ax.add_patch(plt.Rectangle((x, y), w, h, facecolor=colour, edgecolor="#555", lw=0.9))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight)

    def arrow(x0, y0, x1, y1, colour="#444", style="->"):
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": style, "lw": 1.2, "color": colour})

    top = height - 0.6
    # -- mapping network ----------------------------------------------------------------------
    ax.text(1.6, top + 0.25, "mapping network", ha="center", fontsize=11, weight="bold")
    layers_n, w_dim = len(g.mapping.layers), g.w_dim
    steps = [(f"z ({g.z_dim})", NOTE), ("pixel norm\n(+ normalised class embedding\nwhen conditional)", MAPPING),
             (f"{layers_n} x FC {w_dim}, leaky ReLU x sqrt 2\nlr multiplier {g.mapping.layers[0].lr_mult:g}",
              MAPPING), (f"w ({w_dim})", NOTE)]
    y = top - 0.4
    for i, (text, colour) in enumerate(steps):
        h = 0.45 + 0.24 * text.count("\n")
        box(0.1, y - h, 3.0, h, text, colour)
        y -= h
        if i < len(steps) - 1:
            arrow(1.6, y, 1.6, y - 0.3)
            y -= 0.3
    arrow(1.6, y, 1.6, y - 0.3)
    w_bottom = y - 0.3  # the top of the ws box
    box(0.1, w_bottom - 0.95, 3.0, 0.95,
        f"broadcast to {g.num_ws} ws (one per layer)\nstyle mixing: a second w from a\nrandom layer on (training)",
        MAPPING, size=8)
    box(0.1, w_bottom - 2.05, 3.0, 0.8, "w_avg: moving average of w\ntruncation: w_avg + psi (w - w_avg)", NOTE, size=8)

    # -- synthesis network --------------------------------------------------------------------
    ax.text(6.0, top + 0.25, "synthesis network (skip generator)", ha="center", fontsize=11, weight="bold")
    y = top - 0.9
    rgb_x = 8.55
    previous_rgb = None
    for i, block in enumerate(blocks):
        r = block.resolution
        c = block.conv1.weight.shape[0]
        if block.first:
            box(4.0, y + 0.3, 4.0, 0.45, f"learned constant {c} x 4 x 4", NOTE)
            arrow(6.0, y + 0.3, 6.0, y)
            y -= 0.75
            text = f"{r}x{r}: modulated conv 3x3 ({c}), noise, bias, lrelu"
        else:
            text = (f"{r}x{r}: upsampling modulated conv 3x3 ({c}),\n"
                    f"modulated conv 3x3 ({c}); noise, bias, lrelu")
        box(4.0, y, 4.0, 0.75, text, SYNTHESIS, size=8)
        arrow(3.1, w_bottom - 0.5, 4.0, y + 0.37, colour="#9aa")  # the styles
        box(rgb_x, y + 0.15, 1.2, 0.45, "toRGB 1x1", RGB, size=8)
        arrow(8.0, y + 0.37, rgb_x, y + 0.37)
        if previous_rgb is not None:
            arrow(rgb_x + 0.6, previous_rgb, rgb_x + 0.6, y + 0.6, colour="#c60")
            ax.text(rgb_x + 0.7, (previous_rgb + y + 0.6) / 2, "upsample [1,3,3,1]\n+ sum", fontsize=7, color="#c60",
                    va="center")
        previous_rgb = y + 0.15
        if i < rows - 1:
            arrow(6.0, y, 6.0, y - 0.5)
        y -= 1.25
    box(rgb_x - 0.6, y + 0.35, 2.4, 0.5, f"tanh to the data's range\nimage {args.channels} x {args.side} x {args.side}",
        NOTE, size=8)
    arrow(rgb_x + 0.6, previous_rgb, rgb_x + 0.6, y + 0.85, colour="#c60")

    # -- discriminator ------------------------------------------------------------------------
    x0 = 11.0
    ax.text(x0 + 1.8, top + 0.25, "discriminator (residual)", ha="center", fontsize=11, weight="bold")
    y = top - 0.9
    first = d.blocks[0]
    box(x0, y, 3.6, 0.5, f"image {args.channels} x {args.side} x {args.side} -> fromRGB 1x1 "
                         f"({first.fromrgb.weight.shape[0]})", DISC, size=8)
    y -= 0.85
    r = args.side
    for block in d.blocks:
        arrow(x0 + 1.8, y + 0.85, x0 + 1.8, y + 0.6)
        c_out = block.conv1.weight.shape[0]
        box(x0, y - 0.2, 3.6, 0.8, f"{r} -> {r // 2}: conv 3x3, conv 3x3 down ({c_out})\n"
                                   "+ skip 1x1 down; each x 1/sqrt 2\n(down: [1,3,3,1] blur, stride 2)", DISC, size=7.5)
        y -= 1.15
        r //= 2
    c4 = d.fc.out_features
    tail = [f"minibatch stddev (group {d.mbstd.group_size}, {d.mbstd.num_channels} map)",
            f"conv 3x3 ({c4}), FC {c4 * 16} -> {c4}", "FC -> 1 raw score per sample\n(+ <embed(y), features>: projection)"]
    for text in tail:
        arrow(x0 + 1.8, y + 0.85, x0 + 1.8, y + 0.6)
        box(x0, y, 3.6, 0.6 if "\n" in text else 0.5, text, DISC, size=8)
        y -= 0.85
    ax.text(x0 + 1.8, y + 0.3, "equalised learning rate in every layer\n(weights N(0,1), scaled at run time)",
            ha="center", fontsize=7.5, color="#555", va="top")

    ax.set_xlim(0, 15)
    ax.set_ylim(min(y - 0.6, 0), height + 0.2)
    ax.axis("off")
    import gan_registry_stylegan2 as sg

    ax.set_title(f"stylegan2 at its defaults on {args.side} px, {args.channels} channel(s): latent 128, "
                 f"channel_base {sg.CHANNEL_BASE}, channel_max {sg.CHANNEL_MAX}", fontsize=10)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100, bbox_inches="tight")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
