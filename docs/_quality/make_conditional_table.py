"""Runs the class-conditional combinations on the bundled digits and writes docs/_quality/conditional.md and .json,
and the class-per-row grid docs/images/conditional-grid.png of the dcgan run.

    python docs/_quality/make_conditional_table.py [--out DIR]   # about 35 minutes on 2 cores

Every row is a real `gan run --conditional` then `gan eval` (classifier features, 2,000 samples with labels drawn
as the data's classes occur, the training split): class accuracy is the share of samples the dataset's classifier
puts in the class they were asked for; intra-FID the mean over classes of each class's FID against that class.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from make_table import cpu_minutes, gan

HERE = Path(__file__).parent
COMBINATIONS = [  # (name, arch, objective, steps, conditional, extra flags)
    ("mlp + gan", "mlp", "gan", 2500, True, []),
    ("dcgan + gan (projection)", "dcgan", "gan", 1000, True, []),
    ("dcgan + gan (ACGAN)", "dcgan", "gan", 1000, True, ["-p", "discriminator.conditioning=acgan"]),
    ("resnet + hinge (projection)", "resnet", "hinge", 2000, True, []),  # the plugin's small widths (32)
]
EVAL = ["--metric", "fid", "--samples", "2000", "--json"]
CONDITIONAL_EVAL = ["--metric", "class-accuracy", "-p", "metric.per_class=true"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="conditional-")))
    args = parser.parse_args()
    rows = []
    for name, arch, objective, steps, conditional, extra in COMBINATIONS:
        run = args.out / name.replace(" ", "").replace("+", "-").replace(",", "-").replace("(", "-").strip(")")
        flags = ["--arch", arch, "--objective", objective, "--dataset", "digits", "--steps", str(steps), "--seed", "0",
                 *(["--conditional"] if conditional else []), *extra]
        before = cpu_minutes()
        gan("run", *flags, "--no-progress", "--out", str(run))
        minutes = cpu_minutes() - before
        report = json.loads(gan("eval", str(run), *EVAL, *(CONDITIONAL_EVAL if conditional else [])))
        m = report["metrics"]
        rows.append({"combination": name, "steps": steps, "cpu_minutes": round(minutes, 1), "fid": m["fid"]["fid"],
                     "intra_fid": m["fid"].get("intra_fid"),
                     "class_accuracy": m.get("class-accuracy", {}).get("class_accuracy"),
                     "worst_class_accuracy": m.get("class-accuracy", {}).get("class_accuracy_worst"),
                     "command": "gan run " + " ".join(flags)})
        print(rows[-1], flush=True)
        if name == "dcgan + gan (projection)":
            grid = sorted((run / "samples").glob("final-*.png"))[-1]
            shutil.copyfile(grid, HERE.parent / "images" / "conditional-grid.png")
    (HERE / "conditional.json").write_text(json.dumps({"rows": rows, "protocol": report["protocol"]}, indent=2) + "\n")

    def number(value, digits):
        return "-" if value is None else f"{value:.{digits}f}"

    lines = ["| combination | steps | CPU min | class accuracy | worst class | FID | intra-FID | command |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['combination']} | {r['steps']} | {r['cpu_minutes']} | {number(r['class_accuracy'], 3)} | "
                     f"{number(r['worst_class_accuracy'], 3)} | {r['fid']:.1f} | {number(r['intra_fid'], 1)} | "
                     f"`{r['command']}` |")
    (HERE / "conditional.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
