"""Remake the pictures of the plugin tutorials, docs/images/tutorials/PAGE-WHAT.png, by running each tutorial.

    OMP_NUM_THREADS=1 python docs/_quality/make_tutorial_pictures.py [PAGE ...] [--keep]

Takes about 4 minutes on 2 CPU cores, one page after another (the resmlp and ragan runs, 1.5 and 0.8 minutes, most);
the runs are seeded, so the pictures come out the same byte for byte until the code changes.

For each page it does what a reader of that page does, in a scratch directory: it writes the page's titled code
blocks as files, exactly as tests/test_tutorials.py extracts them (its helpers are imported), runs the commands
the page shows, in order, and copies the pictures they made. Every command below must appear word for word in
its page's text (a console or README block, or inline code), so a page and its pictures cannot drift apart.

`python -m pip install -e PACKAGE` is run as `pip install --no-deps --target SITE PACKAGE` with PYTHONPATH=SITE for
the other commands, as the test suite does: the environment is never changed (a tutorial plugin installed into it
would clash with the test suite's own copy), and removing the scratch directory at the end uninstalls everything.
Pictures over 150 KB are downscaled.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "images" / "tutorials"
MAX_BYTES = 150_000
sys.path.insert(0, str(ROOT / "tests"))
from test_tutorials import PAGES as TESTED, TUTORIALS, tutorial_files  # noqa: E402

DRAW_SPIRAL_DATA = (  # the tutorial's own `build(...).load()`, drawn as `gan sample` draws points
    "import sys, gan_spiral\nfrom gan_registry import render\n"
    "points = gan_spiral.build(gan_spiral.SpiralParams(), None).load()[:2000]\n"
    "render.save(points, sys.argv[1], None)\n"
)

# page -> the commands the page shows, in order; optionally python: [code, *args], a script run after them;
# pictures: {name in docs/images/tutorials/PAGE-NAME.png: the file the run wrote there (a glob)}.
PICTURES = {
    "index": {
        "commands": ["gan new-plugin blobs --kind dataset", "python -m pip install -e gan-registry-blobs",
                     "gan run --arch mlp --objective gan --dataset blobs --steps 200"],
        "pictures": {"blobs-samples": "runs/*-mlp-gan-blobs/samples/final-step-*.png"},
    },
    "dataset-plugin": {
        "commands": ["python -m pip install -e gan-spiral",
                     "gan run --arch mlp --objective gan --dataset spiral --steps 4000 "
                     "-p objective.lr_generator=1e-3 -p objective.lr_discriminator=1e-3 --out runs/spiral",
                     "gan sample runs/spiral -n 2000 -o spiral.png"],
        "python": [DRAW_SPIRAL_DATA, "data.png"],
        "pictures": {"data": "data.png", "samples": "spiral.png", "epoch-1": "runs/spiral/samples/epoch-0001.png"},
    },
    "objective-plugin": {
        "commands": ["python -m pip install -e gan-ragan",
                     "gan run --arch mlp --objective ragan --dataset gaussians --steps 3000 --out runs/ring-ragan",
                     "gan eval runs/ring-ragan",
                     "gan sample runs/ring-ragan -n 2000 -o ring-ragan.png",
                     "gan plot runs/ring-ragan -o curves.png"],
        "pictures": {"samples": "ring-ragan.png", "curves": "curves.png"},
    },
    "architecture-plugin": {
        "commands": ["python -m pip install -e gan-resmlp",
                     "gan run --arch resmlp --objective gan --dataset gaussians --steps 3000 --out runs/ring-resmlp",
                     "gan sample runs/ring-resmlp -n 2000 -o ring-resmlp.png"],
        "pictures": {"samples": "ring-resmlp.png"},
    },
    "metric-plugin": {
        "commands": ["python -m pip install -e gan-moments",
                     "gan run --arch mlp --objective gan --dataset gaussians --steps 1000 --out runs/ring",
                     "gan eval runs/ring --metric moments",
                     "gan sample runs/ring -n 2500 -o ring.png"],
        "pictures": {"samples": "ring.png"},
    },
    "publish": {
        "commands": ['python -m pip install -e "gan-spiral[test]"',
                     "gan run --arch mlp --objective gan --dataset spiral -p dataset.arms=3 --steps 3000"],
        "pictures": {"three-arms": "runs/*-mlp-gan-spiral/samples/final-step-*.png"},
    },
    "python-api": {
        "commands": ["python ring.py", "gan plot runs/ring -o curves.png"],
        "pictures": {"samples": "ring.png", "curves": "curves.png"},
    },
}


def shown_on(page: str) -> str:
    """The page's text with shell line continuations joined, so a command reads as one line."""
    return re.sub(r"\\\n\s*", "", (TUTORIALS / f"{page}.md").read_text())


def run(argv: list[str], cwd: Path, site: Path, log) -> None:
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    log.write(f"$ {shlex.join(argv)}\n")
    log.flush()
    result = subprocess.run(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=1200)
    if result.returncode:
        raise SystemExit(f"`{shlex.join(argv)}` failed in {cwd}; see {log.name}")


def argv_of(command: str, site: Path) -> list[str]:
    """The command a reader types, as run here: `gan` through this Python, pip into SITE."""
    words = shlex.split(command)
    if words[:4] == ["python", "-m", "pip", "install"]:
        package = words[-1].split("[")[0]  # extras name only dependencies, which --no-deps skips
        return [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                "--disable-pip-version-check", "--target", str(site), f"./{package}"]  # ./: a folder, not a name
    if words[0] == "gan":
        return [sys.executable, "-m", "gan_registry", *words[1:]]
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    raise ValueError(f"cannot run {command!r}")


def copy_picture(source: Path, target: Path) -> None:
    from PIL import Image

    image = Image.open(source)
    image.save(target, optimize=True)
    while target.stat().st_size > MAX_BYTES:
        image = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.LANCZOS)
        image.save(target, optimize=True)


def make(page: str, scratch: Path) -> list[Path]:
    spec, text = PICTURES[page], shown_on(page)
    work, site = scratch / page, scratch / f"{page}-site"
    work.mkdir(parents=True)
    for source in [*TESTED.get(page, {}).get("builds_on", []), page]:
        for title, content in tutorial_files(TUTORIALS / f"{source}.md").items():
            (work / title).parent.mkdir(parents=True, exist_ok=True)
            (work / title).write_text(content)
    missing = [command for command in spec["commands"] if command not in text]
    assert not missing, f"{page}.md does not show `{missing[0]}`"
    with open(scratch / f"{page}.log", "w") as log:
        for command in spec["commands"]:
            run(argv_of(command, site), work, site, log)
        if "python" in spec:
            code, *args = spec["python"]
            run([sys.executable, "-c", code, *args], work, site, log)
    written = []
    for name, pattern in spec["pictures"].items():
        found = sorted(work.glob(pattern))
        assert found, f"{page}: nothing matches {pattern}; see {scratch / f'{page}.log'}"
        written.append(OUT / f"{page}-{name}.png")
        copy_picture(found[-1], written[-1])
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", metavar="PAGE", help=f"default: all of {', '.join(PICTURES)}")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (runs and logs)")
    args = parser.parse_args()
    if set(args.pages) - set(PICTURES):
        parser.error(f"no tutorial pictures for {sorted(set(args.pages) - set(PICTURES))}")
    OUT.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="tutorial-pictures-"))
    try:
        for page in args.pages or PICTURES:
            start = time.monotonic()
            written = make(page, scratch)
            print(f"{page}: {', '.join(p.name for p in written)} ({time.monotonic() - start:.0f} s)", flush=True)
    finally:
        if args.keep:
            print(f"runs and logs kept in {scratch}")
        else:
            shutil.rmtree(scratch)  # the plugins' install directories too: nothing stays installed


if __name__ == "__main__":
    main()
