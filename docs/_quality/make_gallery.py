"""Runs each built-in combination on a short budget and writes the docs gallery: a page per combination
(docs/gallery/<slug>.md) with its real final grid (or scatter), its loss curves (`gan plot`), its measured metrics
and the command, plus docs/gallery/index.md with every picture side by side.

    python docs/_quality/make_gallery.py [--out DIR] [--only SLUG ...]   # about 40 CPU-minutes in all

Image metrics use the digits classifier's features on 2,000 samples against the training split (docs: measuring
quality); the 2D ring is scored by mode coverage (PacGAN protocol). Pictures are kept small: grids are PNGs of a
few tens of KB.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from make_table import cpu_minutes, gan

HERE = Path(__file__).parent
DOCS = HERE.parent
PAGES, IMAGES = DOCS / "gallery", DOCS / "images" / "gallery"
IMAGE_EVAL = ["--metric", "fid", "--metric", "precision-recall", "--samples", "2000", "--json"]


@dataclass
class Combination:
    slug: str
    title: str
    flags: list[str]
    about: str
    evaluation: list[str] = field(default_factory=lambda: list(IMAGE_EVAL))


COMBINATIONS = [
    Combination("mlp-gan-ring", "MLP + GAN on the 8-Gaussian ring",
                ["--arch", "mlp", "--objective", "gan", "--dataset", "gaussians"],
                "The PacGAN toy: every blue point a sample, every red cross a mode centre. The dataset's suggested "
                "10,000 steps with a decaying learning rate.",
                ["--metric", "mode-coverage", "--json"]),
    Combination("mlp-gan-digits", "MLP + GAN on digits",
                ["--arch", "mlp", "--objective", "gan", "--dataset", "digits", "--steps", "2000"],
                "The plain fully connected GAN of Goodfellow et al. on scikit-learn's digits at 32 px."),
    Combination("dcgan-gan-digits", "DCGAN + GAN on digits",
                ["--arch", "dcgan", "--objective", "gan", "--dataset", "digits", "--steps", "1000"],
                "Radford et al.'s convolutional GAN with the non-saturating loss."),
    Combination("dcgan-rpgan-digits", "DCGAN + RpGAN (R3GAN's loss) on digits",
                ["--arch", "dcgan", "--objective", "rpgan", "--dataset", "digits", "--steps", "1000"],
                "The relativistic pairing loss with R1 and R2 (Huang et al. 2024)."),
    Combination("dcgan-wgan-gp-digits", "DCGAN + WGAN-GP on digits",
                ["--arch", "dcgan", "--objective", "wgan-gp", "--dataset", "digits", "--steps", "400"],
                "Wasserstein loss with the gradient penalty: five critic steps per generator step, so fewer "
                "generator steps in the same time."),
    Combination("lenet-gan-digits", "LeNet-5 discriminator + transposed-conv generator on digits",
                ["--arch", "lenet", "--objective", "gan", "--dataset", "digits", "--steps", "1000"],
                "LeCun's LeNet-5 as the discriminator."),
    Combination("resnet-hinge-conditional", "SNGAN ResNet + hinge, class-conditional, on digits",
                ["--arch", "resnet", "--objective", "hinge", "--dataset", "digits", "--conditional", "--steps", "1000",
                 "-p", "objective.lr_generator=0.0004"],
                "Conditional BatchNorm and a stem label embedding in the generator, a projection discriminator with "
                "spectral norm; equal learning rates. Every row is one digit class.",
                [*IMAGE_EVAL, "--metric", "class-accuracy"]),
    Combination("aae-digits", "Adversarial autoencoder on digits",
                ["--arch", "aae", "--objective", "aae", "--dataset", "digits", "--steps", "1500"],
                "Makhzani et al.'s AAE: decoder samples from the prior."),
]


def shrink(source: Path, target: Path, width: int = 360) -> None:
    from PIL import Image

    with Image.open(source) as picture:
        picture = picture.convert("RGB")
        if picture.width > width:
            picture = picture.resize((width, round(picture.height * width / picture.width)), Image.NEAREST)
        picture.save(target, optimize=True)


def figures(report: dict) -> list[tuple[str, str]]:
    """(name, value) of the numbers worth a table row."""
    rows = []
    for metric, values in report["metrics"].items():
        for key, value in values.items():
            if isinstance(value, float) and not key.endswith("_std") and not key.startswith("fid_class_"):
                rows.append((f"{metric}: {key}", f"{value:.4g}"))
            elif isinstance(value, int) and not isinstance(value, bool):
                rows.append((f"{metric}: {key}", str(value)))
    return rows


def page(c: Combination, row: dict) -> str:
    table = "\n".join(f"| {name} | {value} |" for name, value in row["figures"])
    return f"""# {c.title}

{c.about}

```console
$ gan run {' '.join(row['flags'])}
```

{row['steps']} steps, {row['cpu_minutes']} CPU-minutes on a 2-core machine.

![Final samples of {c.title}](../images/gallery/{c.slug}.png){{ width="360" }}
![Loss curves of {c.title}](../images/gallery/{c.slug}-curves.png)

| measured (`gan eval {' '.join(a for a in c.evaluation if a != '--json')}`) | value |
| --- | --- |
{table}

*Made by `python docs/_quality/make_gallery.py`: the picture is the run's fixed-noise grid at its last step, the
curves are `gan plot` of the run's log (faint: raw, solid: smoothed).*
"""


def index(rows: list[dict]) -> str:
    cells = [f"[![{r['title']}](../images/gallery/{r['slug']}.png){{ width=\"220\" }}]({r['slug']}.md)<br>"
             f"[{r['title']}]({r['slug']}.md)" for r in rows]
    lines = ["| | | |", "| --- | --- | --- |"]
    for start in range(0, len(cells), 3):
        chunk = cells[start:start + 3] + [""] * (3 - len(cells[start:start + 3]))
        lines.append("| " + " | ".join(chunk) + " |")
    return ("# Gallery\n\nEach built-in combination, trained on a short budget on a 2-core CPU by "
            "`python docs/_quality/make_gallery.py`: its final samples, loss curves and measured quality. Click a "
            "picture for its page.\n\n" + "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="gallery-")))
    parser.add_argument("--only", nargs="*", help="slugs to (re)make; the others keep their gallery.json rows")
    args = parser.parse_args()
    PAGES.mkdir(exist_ok=True)
    IMAGES.mkdir(parents=True, exist_ok=True)
    store = HERE / "gallery.json"
    done = {r["slug"]: r for r in json.loads(store.read_text())["rows"]} if store.exists() else {}
    for c in COMBINATIONS:
        if args.only and c.slug not in args.only:
            continue
        run = args.out / c.slug
        shutil.rmtree(run, ignore_errors=True)
        flags = [*c.flags, "--seed", "0"]
        before = cpu_minutes()
        gan("run", *flags, "--no-progress", "--out", str(run))
        minutes = round(cpu_minutes() - before, 1)
        report = json.loads(gan("eval", str(run), *c.evaluation))
        shrink(sorted((run / "samples").glob("final-*.png"))[-1], IMAGES / f"{c.slug}.png")
        gan("plot", str(run), "-o", str(IMAGES / f"{c.slug}-curves.png"))
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        done[c.slug] = {"slug": c.slug, "title": c.title, "flags": flags, "steps": records[-1]["step"],
                        "cpu_minutes": minutes, "figures": figures(report)}
        (PAGES / f"{c.slug}.md").write_text(page(c, done[c.slug]))
        print(c.slug, minutes, "CPU-min", done[c.slug]["figures"], flush=True)
    rows = [done[c.slug] for c in COMBINATIONS if c.slug in done]
    store.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    (PAGES / "index.md").write_text(index(rows))


if __name__ == "__main__":
    main()
