"""Mode coverage of each objective on the PacGAN 2D toys (8-mode ring, 25-mode grid).

Trains `mlp` with each objective through real `gan run` subprocesses, scores each run with
`gan eval --metric mode-coverage --json` (2,500 samples: the PacGAN protocol), and prints a
table beside PacGAN's published rows, then every run's exact command line.

    python benchmarks/modes.py                 # 5 objectives x 2 layouts x 3 seeds: about 40 minutes on 2 cores
    python benchmarks/modes.py --quick         # 1 seed, a quarter of the steps: a few minutes
    python benchmarks/modes.py --objectives gan --layouts grid --seeds 5 -- -p objective.label_smoothing=0.1

Every run is `gan run --arch mlp --objective X --dataset gaussians -p dataset.layout=L --seed S`:
the objective at its defaults, with the settings the `gaussians` dataset suggests (`gan describe
gaussians`: 2-D noise, batch 256, 10,000 steps, learning rates x10 decaying over the last 70 %).
The critic objectives (5 critic steps per generator step) get fewer steps, to stay near
2 CPU-minutes a run; extra arguments after `--` go to every `gan run`. Each run is one process
with one torch thread (OMP_NUM_THREADS=1): tiny networks gain nothing from more, and `--jobs`
runs that many side by side. "CPU s" is the user+system time of the `gan run` process
(start-up included, evaluation not).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gan_registry_toy_datasets.gaussians import SUGGESTS as GAUSSIANS_SUGGESTS

OBJECTIVES = ["gan", "wgan", "wgan-gp", "hinge", "lsgan"]
LAYOUTS = ["ring", "grid"]
# Generator steps, where not the dataset's suggestion: the critic objectives take 5 critic
# steps per generator step (wgan-gp a double backward each), so they get fewer.
STEPS = {"wgan": 3_000, "wgan-gp": 2_000}

# PacGAN (Lin et al. 2018): the rows quoted in the project's notes (docs/anchors); "-" where not quoted.
PACGAN_ROWS = [
    ("PacGAN paper: GAN", "ring", "6.3", "-", "-"),
    ("PacGAN paper: PacGAN4", "ring", "7.8", "95.9", "-"),
    ("PacGAN paper: GAN", "grid", "17.3", "-", "-"),
    ("PacGAN paper: PacGAN4", "grid", "24.8", "93.6", "0.04"),
]


def run_command(objective: str, layout: str, seed: int, steps: int | None, extra: list[str], out: Path) -> list[str]:
    length = ["--steps", str(steps)] if steps else []
    return ["gan", "run", "--arch", "mlp", "--objective", objective, "--dataset", "gaussians",
            "-p", f"dataset.layout={layout}", "--seed", str(seed), *length, *extra,
            "--no-progress", "--log-every", "1000", "--out", str(out)]


def _gan(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "gan_registry", *args[1:]]  # the `gan` of this interpreter


def one_run(job: dict, env: dict[str, str]) -> dict:
    """Train, then evaluate; CPU time is the training process's own (os.wait4 rusage)."""
    out = Path(job["out"])
    log = out.with_suffix(".log")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        process = subprocess.Popen(_gan(job["command"]), env=env, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    result = {**job, "cpu_s": usage.ru_utime + usage.ru_stime}
    if os.waitstatus_to_exitcode(status) != 0:
        return {**result, "error": f"gan run exited {os.waitstatus_to_exitcode(status)}; see {log}"}
    result["steps"] = json.loads((out / "config.json").read_text())["settings"]["steps"]
    evaluated = subprocess.run(_gan(["gan", "eval", str(out), "--metric", "mode-coverage", "--json"]),
                               env=env, capture_output=True, text=True)
    if evaluated.returncode != 0:
        return {**result, "error": evaluated.stderr.strip()}
    return {**result, **json.loads(evaluated.stdout)["metrics"]["mode-coverage"]}


def summarise(results: list[dict]) -> list[dict]:
    rows = []
    keys = sorted({(r["objective"], r["layout"]) for r in results},
                  key=lambda k: (OBJECTIVES.index(k[0]) if k[0] in OBJECTIVES else 99, k[0], LAYOUTS.index(k[1])))
    for objective, layout in keys:
        group = [r for r in results if (r["objective"], r["layout"]) == (objective, layout)]
        ok = [r for r in group if "error" not in r]
        if not ok:
            rows.append({"objective": objective, "layout": layout, "error": group[0]["error"]})
            continue
        rows.append({
            "objective": objective, "layout": layout, "steps": ok[0]["steps"], "seeds": len(ok),
            "modes": statistics.mean(r["modes_covered"] for r in ok), "modes_total": ok[0]["modes_total"],
            "all_modes": sum(r["modes_covered"] == r["modes_total"] for r in ok),
            "hq": statistics.mean(r["high_quality_percent"] for r in ok),
            "hq_min": min(r["high_quality_percent"] for r in ok),
            "rkl": statistics.mean(r["reverse_kl"] for r in ok),
            "cpu": statistics.mean(r["cpu_s"] for r in ok), "cpu_max": max(r["cpu_s"] for r in ok),
        })
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| objective | layout | steps | modes (mean) | runs with all modes | high quality % (mean / min)"
             " | reverse KL | CPU s per run (mean / max) |", "|" + "---|" * 8]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['objective']} | {r['layout']} | failed: {r['error']} | | | | | |")
            continue
        lines.append(
            f"| {r['objective']} | {r['layout']} | {r['steps']} | {r['modes']:.1f} / {r['modes_total']}"
            f" | {r['all_modes']}/{r['seeds']} | {r['hq']:.1f} / {r['hq_min']:.1f} | {r['rkl']:.3f}"
            f" | {r['cpu']:.0f} / {r['cpu_max']:.0f} |"
        )
    for name, layout, modes, hq, rkl in PACGAN_ROWS:
        total = 8 if layout == "ring" else 25
        lines.append(f"| {name} | {layout} | | {modes} / {total} | | {hq} | {rkl} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objectives", default=",".join(OBJECTIVES), help="comma-separated (default: all five)")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="ring, grid or both")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per objective and layout")
    parser.add_argument("--steps", type=int, help="generator steps for every objective (default: see STEPS)")
    parser.add_argument("--quick", action="store_true", help="1 seed and a quarter of the steps")
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side (one torch thread each)")
    parser.add_argument("--out", type=Path, help="where runs go (default runs/bench-modes-TIME)")
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    seeds = 1 if args.quick else args.seeds
    objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
    layouts = [layout.strip() for layout in args.layouts.split(",") if layout.strip()]
    root = args.out or Path("runs") / time.strftime("bench-modes-%Y%m%d-%H%M%S")

    jobs = []
    for objective in objectives:
        steps = args.steps or STEPS.get(objective)
        if args.quick:
            steps = (steps or GAUSSIANS_SUGGESTS["steps"]) // 4
        for layout in layouts:
            for seed in range(seeds):
                out = root / f"{objective}-{layout}-s{seed}"
                jobs.append({"objective": objective, "layout": layout, "seed": seed, "out": str(out),
                             "command": run_command(objective, layout, seed, steps, extra, out)})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    print(f"{len(jobs)} runs, {args.jobs} at a time, into {root}", file=sys.stderr, flush=True)

    results = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for result in pool.map(lambda job: one_run(job, env), jobs):
            results.append(result)
            summary = result.get("error") or (
                f"{result['modes_covered']}/{result['modes_total']} modes, "
                f"{result['high_quality_percent']:.1f}% hq, rKL {result['reverse_kl']:.3f}")
            print(f"[{len(results)}/{len(jobs)}] {result['objective']} {result['layout']} seed {result['seed']}: "
                  f"{summary}, {result['cpu_s']:.0f} CPU s", file=sys.stderr, flush=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    print(table(summarise(results)))
    print("\nCommands (seed 0; other seeds change --seed), each followed by"
          " `gan eval OUT --metric mode-coverage --json`, with OMP_NUM_THREADS=1:")
    for job in jobs:
        if job["seed"] == 0:
            print("  " + shlex.join(job["command"]))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
