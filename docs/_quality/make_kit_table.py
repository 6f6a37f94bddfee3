"""Measures each switch of the quality kit on the bundled digits, and the Stacked-digits mode coverage, and writes
docs/_quality/kit.md and kit.json.

    python docs/_quality/make_kit_table.py [--out DIR] [--jobs 2] [--only NAME ...]   # about 45 minutes on 2 cores

Every row is a real `gan run` (one torch thread, `--jobs` runs at a time) then `gan eval` on the same protocol as
table.md: classifier features, 2,000 generated samples, the training split as reference; Stacked rows are scored
by `stacked-modes` on 26,000 samples (the VEEGAN/PacGAN protocol). CPU minutes are the run's own (user + system).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).parent
LOCK = threading.Lock()
FID = ["--metric", "fid", "--metric", "precision-recall", "--samples", "2000", "--json"]
MODES = ["--metric", "stacked-modes", "--samples", "26000", "--json"]
DIGITS = ["--dataset", "digits", "--seed", "0"]
STACKED = ["--dataset", "stacked", "--seed", "0"]
EMA = ["--ema-half-life", "10000"]

OFF = ["--ema", "0"]  # the average off, whatever the dataset suggests
ROWS = [  # (name, the switch it shows, gan run arguments, eval arguments), in the order they are run
    ("dcgan+gan", "--ema-half-life 10000", ["--arch", "dcgan", "--objective", "gan", *DIGITS, "--steps", "1000", *EMA],
     FID),
    ("mlp+gan", "--ema-half-life 10000", ["--arch", "mlp", "--objective", "gan", *DIGITS, *EMA], FID),
    ("dcgan+rpgan", "--ema-half-life 10000", ["--arch", "dcgan", "--objective", "rpgan", *DIGITS, "--steps", "1000",
                                              *EMA], FID),
    ("dcgan+wgan-gp", "--ema-half-life 10000", ["--arch", "dcgan", "--objective", "wgan-gp", *DIGITS, "--steps", "300",
                                                *EMA], FID),
    ("stacked dcgan+gan", "defaults", ["--arch", "dcgan", "--objective", "gan", *STACKED, "--steps", "1000"], MODES),
    ("stacked dcgan+hinge", "defaults", ["--arch", "dcgan", "--objective", "hinge", *STACKED, "--steps", "1000"], MODES),
    ("stacked dcgan+wgan-gp", "defaults", ["--arch", "dcgan", "--objective", "wgan-gp", *STACKED, "--steps", "300"],
     MODES),
    ("stacked dcgan+rpgan", "defaults", ["--arch", "dcgan", "--objective", "rpgan", *STACKED, "--steps", "1000"], MODES),
    ("mlp+gan", "defaults", ["--arch", "mlp", "--objective", "gan", *DIGITS, *OFF], FID),
    ("dcgan+gan", "defaults", ["--arch", "dcgan", "--objective", "gan", *DIGITS, "--steps", "1000", *OFF], FID),
    ("dcgan+gan", "-p discriminator.spectral_norm=true", ["--arch", "dcgan", "--objective", "gan", *DIGITS, "--steps",
                                                          "1000", *OFF, "-p", "discriminator.spectral_norm=true"], FID),
    ("dcgan+gan", "-p objective.r1=0.1", ["--arch", "dcgan", "--objective", "gan", *DIGITS, "--steps", "1000", *OFF,
                                          "-p", "objective.r1=0.1"], FID),
    ("dcgan+gan", "--augment diffaugment", ["--arch", "dcgan", "--objective", "gan", *DIGITS, "--steps", "1000", *OFF,
                                            "--augment", "diffaugment"], FID),
    ("dcgan+gan", "--augment diffaugment -p augment.target=0.6",
     ["--arch", "dcgan", "--objective", "gan", *DIGITS, "--steps", "1000", *OFF, "--augment", "diffaugment", "-p",
      "augment.target=0.6"], FID),
    ("dcgan+rpgan", "defaults (R1 = R2 = 0.1)", ["--arch", "dcgan", "--objective", "rpgan", *DIGITS, "--steps", "1000",
                                                 *OFF], FID),
    ("dcgan+wgan-gp", "defaults", ["--arch", "dcgan", "--objective", "wgan-gp", *DIGITS, "--steps", "300", *OFF], FID),
]


def measure(out: Path, name: str, switch: str, run_args: list[str], eval_args: list[str]) -> dict:
    folder = out / f"{name}-{switch}".replace(" ", "_").replace("/", "_").replace("=", "-")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "gan_registry", "run", *run_args, "--no-progress", "--out",
                                str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    err = process.stderr.read()
    if process.returncode != 0:
        return {"combination": name, "switch": switch, "error": err[-500:]}
    wall = time.perf_counter() - started
    result = subprocess.run([sys.executable, "-m", "gan_registry", "eval", str(folder), *eval_args],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if result.returncode != 0:
        return {"combination": name, "switch": switch, "error": result.stderr[-500:]}
    metrics = json.loads(result.stdout)["metrics"]
    row = {"combination": name, "switch": switch, "cpu_minutes": round((usage.ru_utime + usage.ru_stime) / 60, 1),
           "wall_minutes": round(wall / 60, 1), "command": "gan run " + " ".join(run_args), "run": str(folder)}
    if "fid" in metrics:
        row.update(fid=metrics["fid"]["fid"], precision=metrics["precision-recall"]["precision"],
                   recall=metrics["precision-recall"]["recall"])
    if "stacked-modes" in metrics:
        row.update(modes=metrics["stacked-modes"]["modes"], kl=metrics["stacked-modes"]["kl"])
    print(json.dumps(row), flush=True)
    record(row)
    return row


def record(row: dict, floor: float | None = None) -> None:
    """Put one row into kit.json (replacing the row of the same combination and switch)."""
    path = HERE / "kit.json"
    with LOCK:
        table = json.loads(path.read_text()) if path.is_file() else {"floor_fid": None, "rows": []}
        if floor is not None:
            table["floor_fid"] = floor
        if row:
            table["rows"] = [r for r in table["rows"] if (r["combination"], r["switch"]) !=
                             (row["combination"], row["switch"])] + [row]
        path.write_text(json.dumps(table, indent=2) + "\n")


PUBLISHED = [  # Stacked MNIST, 26,000 samples, as the papers report them (modes of 1,000; KL to uniform)
    ("DCGAN (VEEGAN's table, Srivastava et al. 2017)", 99, 3.40),
    ("VEEGAN (Srivastava et al. 2017)", 150, 2.95),
    ("PacGAN4 (Lin et al. 2018)", 1000, 0.07),
    ("R3GAN (Huang et al. 2024)", 1000, 0.029),
]
PAGE = HERE.parent / "quality-kit.md"


def _between(page: str, marker: str, table: str) -> str:
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    head, rest = page.split(start)
    return head + start + "\n" + table + "\n" + end + rest.split(end)[1]


def render() -> None:
    """kit.json as the two tables of docs/quality-kit.md."""
    table = json.loads((HERE / "kit.json").read_text())
    floor, rows = table["floor_fid"], [r for r in table["rows"] if "error" not in r]
    order = {(name, switch): i for i, (name, switch, *_ ) in enumerate(ROWS)}
    kit = sorted((r for r in rows if "fid" in r), key=lambda r: (r["combination"], r["switch"] != "defaults",
                                                                  order.get((r["combination"], r["switch"]), 99)))
    lines = [f"FID on digits (classifier features, 2,000 samples); the real-vs-real floor of the same protocol is "
             f"{floor:.1f}.", "", "| combination | switch | FID | × floor | precision | recall | CPU min | command |",
             "|---|---|---|---|---|---|---|---|"]
    for r in kit:
        if "--dataset digits" in r["command"] and "--ema" not in r["command"]:
            r["command"] += " --ema 0"  # run before digits suggested the average: the same as turning it off now
        lines.append(f"| {r['combination']} | {r['switch']}{' (' + r['note'] + ')' if r.get('note') else ''} | {r['fid']:.1f} | {r['fid'] / floor:.1f} | "
                     f"{r['precision']:.3f} | {r['recall']:.3f} | {r['cpu_minutes']} | `{r['command']}` |")
    stacked = ["| run | modes (of 1,000) | KL to uniform | CPU min | command |", "|---|---|---|---|---|"]
    for r in (r for r in rows if "modes" in r):
        stacked.append(f"| {r['combination'].removeprefix('stacked ')} (ours, stacked digits) | {r['modes']:.0f} | "
                       f"{r['kl']:.2f} | {r['cpu_minutes']} | `{r['command']}` |")
    for name, modes, kl in PUBLISHED:
        stacked.append(f"| {name}, published (Stacked MNIST) | {modes} | {kl} | | |")
    retuned = ["| combination | before: FID (× floor) | precision / recall | after: FID (× floor) | precision / recall | "
               "CPU min after |", "|---|---|---|---|---|---|"]
    by = {(r["combination"], r["switch"]): r for r in kit}
    for name in ("mlp+gan", "dcgan+gan", "dcgan+wgan-gp", "dcgan+rpgan"):
        before = by.get((name, "defaults")) or by.get((name, "defaults (R1 = R2 = 0.1)"))
        after = by.get((name, "--ema-half-life 10000"))
        if before and after:
            retuned.append(f"| {name}{' (after: ' + after['note'] + ')' if after.get('note') else ''} | {before['fid']:.1f} ({before['fid'] / floor:.1f}×) | {before['precision']:.2f} / "
                           f"{before['recall']:.2f} | **{after['fid']:.1f} ({after['fid'] / floor:.1f}×)** | "
                           f"{after['precision']:.2f} / {after['recall']:.2f} | {after['cpu_minutes']} |")
    page = _between(PAGE.read_text(), "kit-table", "\n".join(lines))
    page = _between(page, "retuned-table", "\n".join(retuned))
    PAGE.write_text(_between(page, "stacked-table", "\n".join(stacked)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="kit-")))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="combination names to run (default: all)")
    parser.add_argument("--switch", nargs="*", help="and of those, only these switches; other rows of kit.json stay")
    parser.add_argument("--rows", type=int, nargs="*", help="only the rows of these indices in ROWS")
    parser.add_argument("--render", action="store_true", help="only write the tables of kit.json into the docs page")
    args = parser.parse_args()
    if args.render:
        return render()
    picked = [ROWS[i] for i in args.rows] if args.rows else ROWS  # in the order given
    rows = [r for r in picked if (not args.only or r[0] in args.only) and (not args.switch or r[1] in args.switch)]
    # The floor, on the same protocol; it also trains and caches the classifier once, before the runs share it.
    known = json.loads((HERE / "kit.json").read_text()).get("floor_fid") if (HERE / "kit.json").is_file() else None
    if known is None:
        floor = subprocess.run([sys.executable, "-m", "gan_registry", "eval", "--real", "digits", "--fake",
                                "digits:heldout", *FID], capture_output=True, text=True, check=True)
        record({}, floor=json.loads(floor.stdout)["metrics"]["fid"]["fid"])
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda r: measure(args.out, *r), rows))


if __name__ == "__main__":
    main()
