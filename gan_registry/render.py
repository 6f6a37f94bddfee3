"""Pictures of samples: image grids, looping GIFs of them, and scatter plots for 2D points.

Layer: primitives (docs/architecture.md).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image, ImageDraw

SCATTER_SIZE = 512


def _scatter(points: torch.Tensor, path: Path, centres: torch.Tensor | None = None) -> None:
    image = Image.new("RGB", (SCATTER_SIZE, SCATTER_SIZE), "white")
    draw = ImageDraw.Draw(image)
    finite = points[torch.isfinite(points).all(dim=1)]
    extent_of = torch.cat([finite, centres.float()]) if centres is not None else finite
    extent = float(extent_of.abs().max()) * 1.1 if len(extent_of) else 1.0
    extent = max(extent, 1e-3)
    half = SCATTER_SIZE / 2
    draw.line([(half, 0), (half, SCATTER_SIZE)], fill=(220, 220, 220))
    draw.line([(0, half), (SCATTER_SIZE, half)], fill=(220, 220, 220))
    for x, y in finite.tolist():
        px, py = half + x / extent * half, half - y / extent * half
        draw.ellipse([px - 1.5, py - 1.5, px + 1.5, py + 1.5], fill=(31, 119, 180))
    for x, y in ([] if centres is None else centres.float().tolist()):  # drawn last: visible under the samples
        px, py = half + x / extent * half, half - y / extent * half
        draw.line([(px - 5, py - 5), (px + 5, py + 5)], fill=(214, 39, 40), width=2)
        draw.line([(px - 5, py + 5), (px + 5, py - 5)], fill=(214, 39, 40), width=2)
    draw.text((4, 4), f"x, y in [-{extent:.3g}, {extent:.3g}]", fill=(80, 80, 80))
    image.save(path)


def save(samples: torch.Tensor, path: Path, value_range: tuple[float, float] | None,
         per_row: int | None = None, centres: torch.Tensor | None = None) -> None:
    """Write `samples` as a picture: an image grid for (N, C, H, W) (square, or `per_row` to a row), a scatter plot
    for (N, 2), with the data's mode `centres` (M, 2) as red crosses where they are known."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = samples.detach().float().cpu()
    if samples.dim() == 2 and samples.shape[1] == 2:
        _scatter(samples, path, centres)
        return
    if samples.dim() == 2:  # flat vectors: show each as a one-row strip
        samples = samples[:, None, None, :]
    if samples.dim() != 4:
        raise ValueError(f"cannot draw samples of shape {tuple(samples.shape[1:])} as a picture")
    _save_grid(samples, path, value_range, nrow=per_row or max(1, int(math.ceil(math.sqrt(len(samples))))))


def grid(images: torch.Tensor, nrow: int, padding: int = 2) -> torch.Tensor:
    """(N, C, H, W) images in [0, 1] tiled `nrow` to a row on black, as (3, height, width): torchvision's
    `make_grid` (tested equal to it), written here because importing torchvision costs a run ~1.5 s of start-up."""
    n, channels, height, width = images.shape
    if channels == 1:
        images = images.expand(-1, 3, -1, -1)
    if n == 1:
        return images[0]  # as make_grid: one image, no border
    columns, rows = min(nrow, n), math.ceil(n / nrow)
    cell_h, cell_w = height + padding, width + padding
    canvas = torch.zeros(images.shape[1], rows * cell_h + padding, columns * cell_w + padding, dtype=images.dtype)
    for index, image in enumerate(images):
        top, left = (index // columns) * cell_h + padding, (index % columns) * cell_w + padding
        canvas[:, top:top + height, left:left + width] = image
    return canvas


def _grid_image(images: torch.Tensor, value_range, nrow: int):
    lo, hi = value_range if value_range is not None else (float(images.min()), float(images.max()))
    tiled = grid(((images - lo) / max(hi - lo, 1e-12)).clamp(0, 1), nrow)
    # torchvision's save_image rounding: x * 255 + 0.5, truncated
    pixels = tiled.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()
    return Image.fromarray(pixels)


def _save_grid(images: torch.Tensor, path: Path, value_range, nrow: int) -> None:
    _grid_image(images, value_range, nrow).save(path)


def save_animation(frames: torch.Tensor, path: Path, value_range: tuple[float, float] | None, per_row: int,
                   frame_ms: int = 100) -> None:
    """An endlessly looping GIF of (T, N, C, H, W) images: frame t is the grid of `frames[t]`, `per_row` to a row.
    One value range for every frame, so that brightness does not flicker between them."""
    if frames.dim() != 5:
        raise ValueError(f"an animation is drawn of images, not samples of shape {tuple(frames.shape[2:])}")
    frames = frames.detach().float().cpu()
    if value_range is None:
        value_range = (float(frames.min()), float(frames.max()))

    pictures = [_grid_image(frame, value_range, per_row) for frame in frames]
    # GIF frames hold 256 colours: grey images are exact in them; colour ones are not dithered, since dither noise
    # that changes from frame to frame flickers and does not compress
    pictures = [picture.convert("L") if frames.shape[2] == 1 else picture.quantize(dither=Image.Dither.NONE)
                for picture in pictures]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0)


def save_pairs(inputs: torch.Tensor, outputs: torch.Tensor, path: Path, value_range, per_row: int = 8) -> None:
    """A row of inputs above a row of their reconstructions, repeated."""
    if inputs.dim() != 4:
        raise ValueError(f"reconstruction pairs are drawn for images, not samples of shape {tuple(inputs.shape[1:])}")
    inputs, outputs = inputs.detach().float().cpu(), outputs.detach().float().cpu()
    blank_value = value_range[0] if value_range is not None else float(inputs.min())
    rows = []
    for start in range(0, len(inputs), per_row):
        for part in (inputs, outputs):
            row = part[start : start + per_row]
            if len(row) < per_row:
                blank = torch.full((per_row - len(row), *row.shape[1:]), blank_value)
                row = torch.cat([row, blank])
            rows.append(row)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_grid(torch.cat(rows), path, value_range, nrow=per_row)
