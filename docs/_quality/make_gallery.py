"""Writes the docs gallery from `gan matrix` folders: a page per combination (docs/gallery/<slug>.md) with the
cell's real final grid (or scatter), its loss curves (`gan plot`), the matrix's figures (FID as a multiple of the
real-vs-real floor, precision, recall; mode coverage on the toys), its CPU-minutes and its command, plus
docs/gallery/index.md with every picture side by side. It trains nothing itself: the matrix does.

    python benchmarks/matrix.py --out matrix-runs                      # the matrices (background: hours of CPU)
    python docs/_quality/make_gallery.py --matrix matrix-runs/digits --matrix matrix-runs/toys

A combination no matrix holds (the conditional ResNet: conditioning is not a matrix dimension) keeps its page and
its gallery.json row as they are. Pictures are kept small: grids are PNGs of a few tens of KB.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
DOCS = HERE.parent
PAGES, IMAGES = DOCS / "gallery", DOCS / "images" / "gallery"
IMAGE_EVAL = ["--metric", "fid", "--metric", "precision-recall", "--samples", "2000", "--json"]


@dataclass
class Combination:
    slug: str
    title: str
    cell: tuple[str, str, str]
    """(arch, objective, dataset as the matrix names it)."""
    about: str


COMBINATIONS = [
    Combination("mlp-gan-ring", "MLP + GAN on the 8-Gaussian ring", ("mlp", "gan", "gaussians"),
                "The PacGAN toy: every blue point a sample, every red cross a mode centre. The dataset's suggested "
                "10,000 steps with a decaying learning rate."),
    Combination("mlp-gan-digits", "MLP + GAN on digits", ("mlp", "gan", "digits"),
                "The plain fully connected GAN of Goodfellow et al. on scikit-learn's digits at 32 px."),
    Combination("dcgan-gan-digits", "DCGAN + GAN on digits", ("dcgan", "gan", "digits"),
                "Radford et al.'s convolutional GAN with the non-saturating loss."),
    Combination("dcgan-rpgan-digits", "DCGAN + RpGAN (R3GAN's loss) on digits", ("dcgan", "rpgan", "digits"),
                "The relativistic pairing loss with R1 and R2 (Huang et al. 2024)."),
    Combination("dcgan-wgan-gp-digits", "DCGAN + WGAN-GP on digits", ("dcgan", "wgan-gp", "digits"),
                "Wasserstein loss with the gradient penalty: five critic steps per generator step, so fewer "
                "generator steps in the same time. The headline command, `gan run --arch dcgan --objective wgan-gp`."),
    Combination("lenet-gan-digits", "LeNet-5 discriminator + transposed-conv generator on digits",
                ("lenet", "gan", "digits"), "LeCun's LeNet-5 as the discriminator: the pair of the MNIST tutorial "
                "this project grew from."),
    Combination("stylegan2-gan-digits", "StyleGAN2 + GAN (non-saturating, lazy R1) on digits",
                ("stylegan2", "gan", "digits"),
                "Karras et al.'s StyleGAN2 at CPU widths with its own loss: the non-saturating GAN loss with lazy R1, "
                "as the architecture suggests (docs: architectures, StyleGAN2)."),
    Combination("r3gan-rpgan-digits", "R3GAN + RpGAN on digits, with the paper's recipe", ("r3gan", "rpgan", "digits"),
                "Huang et al.'s modern baseline at CPU widths, trained as the paper does: RpGAN + R1 + R2 with the "
                "learning rate, beta2 and gamma annealed over the run (docs: architectures, R3GAN)."),
    Combination("aae-digits", "Adversarial autoencoder on digits", ("aae", "aae", "digits"),
                "Makhzani et al.'s AAE: decoder samples from the prior."),
]


def gan(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "gan_registry", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"gan {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def shrink(source: Path, target: Path, width: int = 360) -> None:
    from PIL import Image

    with Image.open(source) as picture:
        picture = picture.convert("RGB")
        if picture.width > width:
            picture = picture.resize((width, round(picture.height * width / picture.width)), Image.NEAREST)
        picture.save(target, optimize=True)


def figures(cell: dict) -> list[tuple[str, str]]:
    """(name, value) of the matrix's figures of a cell, for its page's table."""
    m, rows = cell.get("metrics", {}), []
    if "fid" in m:
        rows.append(("classifier FID", f"{m['fid']:.4g}"))
    if "fid_x_floor" in cell:
        rows.append(("FID ÷ the real-vs-real floor", f"{cell['fid_x_floor']:.3g}x (floor {cell['floor']['fid']:.3g})"))
    for key, name in (("precision", "precision"), ("recall", "recall"), ("modes_covered", "modes covered"),
                      ("modes_total", "modes"), ("high_quality_percent", "high-quality samples (%)")):
        if key in m:
            rows.append((name, f"{m[key]:.4g}" if isinstance(m[key], float) else str(m[key])))
    return rows


def page(c: Combination, row: dict) -> str:
    table = "\n".join(f"| {name} | {value} |" for name, value in row["figures"])
    return f"""# {c.title}

{c.about}

```console
$ {row['command']}
```

{row['steps']} steps, {row['cpu_minutes']} CPU-minutes on a 2-core machine.

![Final samples of {c.title}](../images/gallery/{c.slug}.png){{ width="360" }}
![Loss curves of {c.title}](../images/gallery/{c.slug}-curves.png)

| measured by `gan matrix` ({row['samples']:,} samples) | value |
| --- | --- |
{table}

*Made by `gan matrix` and `python docs/_quality/make_gallery.py`: the picture is the cell's fixed-noise grid at its
last step, the curves are `gan plot` of its log (faint: raw, solid: smoothed).*
"""


def index(rows: list[dict]) -> str:
    cells = [f"[![{r['title']}](../images/gallery/{r['slug']}.png){{ width=\"220\" }}]({r['slug']}.md)<br>"
             f"[{r['title']}]({r['slug']}.md)" for r in rows]
    lines = ["| | | |", "| --- | --- | --- |"]
    for start in range(0, len(cells), 3):
        chunk = cells[start:start + 3] + [""] * (3 - len(cells[start:start + 3]))
        lines.append("| " + " | ".join(chunk) + " |")
    return ("# Gallery\n\nEach built-in combination, trained at its defaults on a 2-core CPU by "
            "`gan matrix` ([the combination matrix](../matrix.md)) and drawn by `python docs/_quality/make_gallery.py`: its final samples, loss curves and measured quality. Click a "
            "picture for its page.\n\n" + "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--matrix", type=Path, action="append", required=True, help="a `gan matrix` folder (repeatable)")
    args = parser.parse_args()
    cells = {}
    for folder in args.matrix:
        result = json.loads((folder / "matrix.json").read_text())
        for cell in result["cells"]:
            if cell.get("status") == "done":
                cells[(cell["arch"], cell["objective"], cell["dataset"])] = (folder, cell, result["samples"])
    PAGES.mkdir(exist_ok=True)
    IMAGES.mkdir(parents=True, exist_ok=True)
    store = HERE / "gallery.json"
    done = {r["slug"]: r for r in json.loads(store.read_text())["rows"]} if store.exists() else {}
    for c in COMBINATIONS:
        if c.cell not in cells:
            print(f"{c.slug}: no finished matrix cell {c.cell}; its page is kept", flush=True)
            continue
        folder, cell, samples = cells[c.cell]
        run = folder / cell["run"]
        shrink(folder / cell["grid"], IMAGES / f"{c.slug}.png")
        gan("plot", str(run), "-o", str(IMAGES / f"{c.slug}-curves.png"))
        done[c.slug] = {"slug": c.slug, "title": c.title, "command": cell["command"].split(" --out ")[0],
                        "steps": cell["steps"], "cpu_minutes": round(cell["cpu_minutes"], 1), "samples": samples,
                        "figures": figures(cell)}
        (PAGES / f"{c.slug}.md").write_text(page(c, done[c.slug]))
        print(c.slug, done[c.slug]["figures"], flush=True)
    rows = [done[slug] for slug in dict.fromkeys([c.slug for c in COMBINATIONS] + list(done)) if slug in done]
    store.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    (PAGES / "index.md").write_text(index(rows))


if __name__ == "__main__":
    main()
