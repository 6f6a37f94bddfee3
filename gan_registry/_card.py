"""The model card of an exported generator (Mitchell et al. 2019, "Model Cards for Model Reporting"): a README.md
of facts read from the run, with the YAML front matter the Hugging Face hub reads, and sections left to the author.

The facts (`gather`) are plain JSON, kept in the export folder's config.json; the card is rendered from them alone
(`render`), so that `check` can tell whether a card still states them: an author may fill in the TODO sections,
add front matter and rewrite the title, but not change a stated fact.

Layer: services and duties (docs/architecture.md).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shlex
from pathlib import Path
from typing import Any

import yaml  # huggingface_hub's own dependency, whose parser raises its errors

from . import checkpoint
from ._files import read_record, read_text
from ._plan import Settings, run_flags
from .errors import UserError
from .plots import read_log
from .runs import read_config

CARD_NAME = "README.md"
CARD_LIMIT = 1 << 20
"""Bytes a card may have: ours has a few thousand; a larger one is not read."""
TODO = "TODO (author):"
LIBRARY = "gan-registry"
PROJECT_URL = "https://github.com/gan-registry/gan-registry"
FACT_SECTIONS = ("Loading it", "Reproducing it", "Data", "Training", "Evaluation", "Conditioning", "Files",
                 "License")
"""The card's sections made of facts, each checked word for word; the others are the author's."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with checkpoint.open_user_file(Path(path), "file") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- facts ------------------------------------------------------------------------------------------------------
def commands(config: dict[str, Any], step: int, run_name: str) -> list[str]:
    """The `gan run` (and `gan resume`) commands that train these weights: one per change of process count that
    config.json records, each to the step the next one started at."""
    settings = dict(config["settings"])
    params = settings.pop("params", {}) or {}
    defaults = {f.name: f.default for f in dataclasses.fields(Settings) if f.default is not dataclasses.MISSING}
    values = {k: v for k, v in settings.items() if k in defaults and v != defaults[k] or k not in defaults}
    processes = [p for p in config.get("processes") or [] if isinstance(p, dict) and _number(p.get("from_step"))]
    processes = processes or [{"from_step": 0, "world_size": 1}]
    ends = [p["from_step"] for p in processes[1:]] + [None]
    lines = []
    for index, (process, end) in enumerate(zip(processes, ends)):
        length = ["--steps", str(end)] if end is not None else []
        nproc = ["--nproc", str(process["world_size"])] if (process.get("world_size") or 1) > 1 else []
        if index == 0:
            first = {k: v for k, v in values.items() if end is None or k not in ("steps", "epochs")}
            argv = ["gan", "run", *run_flags(first, params), *length, *nproc, "--out", run_name]
        else:
            if end is None:
                length = (["--steps", str(settings["steps"])] if settings.get("steps")
                          else ["--epochs", str(settings["epochs"])] if settings.get("epochs") else [])
            argv = ["gan", "resume", run_name, *length, *nproc]
        lines.append(shlex.join(argv))
    return lines


def _data_facts(plan: Any) -> dict[str, Any]:
    """What the generator learned from: its training split, counted and hashed where it is held in memory."""
    import torch  # ~3 s: only an export loads the data

    facts: dict[str, Any] = {"split": "training", "samples": None, "sha256": None}
    try:
        data = plan.load_data()
    except (UserError, OSError) as error:  # the data is not on this machine: the card says so
        facts["unavailable"] = " ".join(str(error).split())[:200]
        return facts
    if isinstance(data, torch.Tensor):
        values = data.detach().cpu().contiguous().float().numpy()
        facts.update(samples=len(values), sha256=hashlib.sha256(values.tobytes()).hexdigest())
    elif hasattr(data, "__len__"):
        facts["samples"] = len(data)
    return facts


def _measured(run_dir: Path, config: dict[str, Any], state: dict[str, Any], checkpoint_sha: str) -> list[dict]:
    """Every value measured on these weights: `--eval-every`'s at the checkpoint's step and at the end, and
    `gan eval`'s report where it was made of this very checkpoint."""
    step, settings = state["step"], config["settings"]
    found = []
    kept = ((state.get("callbacks") or {}).get("evaluation") or {}).get("protocol") or {}
    protocol = {"metrics": ", ".join(settings.get("eval_metrics") or ["fid"]),
                "samples": settings.get("eval_samples"), **{k: v for k, v in kept.items() if k != "samples"}}
    try:
        records = read_log(run_dir)
    except UserError:
        records = []
    for record in records:
        if record.get("step") != step:
            continue
        for key, value in record.items():
            prefix, _, name = key.partition("/")
            if prefix in ("eval", "final") and key != "eval/best_step" and _number(value):
                when = "--eval-every, once more at the end on fresh samples" if prefix == "final" else "--eval-every"
                found.append({"name": name, "value": value, "step": step, "by": when, "protocol": protocol})
    report = read_record(run_dir / "eval.json")
    mine = isinstance(report, dict) and isinstance(report.get("checkpoint"), dict) \
        and report["checkpoint"].get("sha256") == checkpoint_sha
    if mine and isinstance(report.get("metrics"), dict):
        by_eval = {"samples": report.get("samples"), "seed": report.get("seed"),
                   **(report.get("protocol") if isinstance(report.get("protocol"), dict) else {})}
        for metric, values in report["metrics"].items():
            for name, value in (values.items() if isinstance(values, dict) else ()):
                if _number(value):
                    found.append({"name": name, "value": value, "step": step, "by": "gan eval",
                                  "protocol": {"metrics": metric, **by_eval}})
    return found


def gather(run_dir: Path, plan: Any, state: dict[str, Any], checkpoint_sha: str, folder: str,
           prior: str, license: str | None) -> dict[str, Any]:
    """The facts a card states, read from the run folder, its plan and the checkpoint's `state`."""
    import torch  # ~3 s: only an export gathers facts

    run_dir = Path(run_dir)
    config = read_config(run_dir)
    components = config.get("components") or {}
    settings = config["settings"]
    kept = (state.get("callbacks") or {}).get("checkpoints") or {}
    threads = config.get("threads") if isinstance(config.get("threads"), dict) else {}
    needed = ["generator"] + (["objective"] if prior == "objective" else [])
    distributions = {r.get("distribution"): r.get("version") for r in components.values()
                     if isinstance(r, dict) and r.get("distribution")}
    return {
        "title": f"{settings.get('arch')} + {settings.get('objective')} on {settings.get('dataset')}",
        "folder": folder,
        "components": components,
        "install": ["gan-registry"] + sorted({components[s]["distribution"] for s in needed
                                              if components.get(s, {}).get("distribution")} - {LIBRARY}),
        "distributions": distributions,
        "commands": commands(config, state["step"], run_dir.name),
        "processes": config.get("processes") or [],
        "data": {"dataset": settings.get("dataset"), "params": (components.get("dataset") or {}).get("params"),
                 **_data_facts(plan), "sample_shape": list(plan.spec.sample_shape),
                 "value_range": list(plan.spec.value_range) if plan.spec.value_range else None},
        "classes": list(plan.classes) if plan.classes else None,
        "training": {"steps": state["step"], "epoch": (state.get("data") or {}).get("epoch"),
                     "batch_size": settings.get("batch_size"), "images_seen": kept.get("images_seen"),
                     "precision": settings.get("precision"), "seed": settings.get("seed"),
                     "wall_seconds": kept.get("wall_seconds"), "devices": kept.get("devices") or [],
                     "threads": threads.get("count"), "ema": settings.get("ema") or settings.get("ema_half_life"),
                     "augment": settings.get("augment")},
        "evaluation": _measured(run_dir, config, state, checkpoint_sha),
        "versions": {"trained with": config.get("versions") or {}, "torch": torch.__version__},
        "license": license,
    }


# -- rendering --------------------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list)) else "none" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(rows: list[tuple[str, Any]]) -> str:
    return "\n".join(["| | |", "| --- | --- |", *(f"| {key} | {_cell(value)} |" for key, value in rows)])


def _duration(seconds: Any) -> str:
    if not _number(seconds):
        return "not recorded (a run trained before gan-registry 0.17)"
    minutes, rest = divmod(float(seconds), 60)
    return f"{seconds:.1f} s" if minutes < 1 else f"{int(minutes)} min {rest:.0f} s ({seconds:.0f} s)"


def _value(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _protocol(protocol: dict[str, Any]) -> str:
    return "; ".join(f"{key}: {_cell(value)}" for key, value in protocol.items() if value is not None)


def sections(facts: dict[str, Any], sha256: str) -> dict[str, str]:
    """The card's sections of facts, by title, as `render` writes them and `check` looks for them."""
    f, data, training = facts, facts["data"], facts["training"]
    loading = (f"```python\nimport gan_registry as gr\ngenerator = gr.load_generator(\"{f['folder']}\")  "
               f"# this folder\nsamples = generator.sample(16, seed=0)\n```\n\n"
               f"It needs `pip install {' '.join(f['install'])}`, and reads only tensors and JSON (nothing in this "
               f"folder is code). `gan sample {f['folder']} -n 64 -o samples.png` draws from it too, and "
               f"`gan export --verify {f['folder']}` checks that the weights are the ones this card describes.")
    processes = "; ".join(f"from step {p.get('from_step')}, {p.get('world_size')} "
                          + ("process" if p.get("world_size") == 1 else "processes")
                          for p in f["processes"] if isinstance(p, dict)) or "one process"
    reproducing = ("```bash\n" + "\n".join(f["commands"]) + "\n```\n\n"
                   f"Processes that trained it: {processes} (config.json records a change of process count; a resume "
                   "on the same count leaves no record). Installed then: "
                   + ", ".join(f"{name} {version}" for name, version in sorted(f["distributions"].items())) + ".")
    data_rows = [("dataset", data["dataset"]), ("parameters", data["params"]), ("split", data["split"]),
                 ("samples", data["samples"] if data["samples"] is not None else "not known"),
                 ("sha256 of the samples as loaded (float32)", data["sha256"] or "not known"),
                 ("sample shape", data["sample_shape"]), ("value range", data["value_range"])]
    if data.get("unavailable"):
        data_rows.append(("not read when exported", data["unavailable"]))
    training_rows = [("steps", training["steps"]), ("epoch reached", training["epoch"]),
                     ("batch size", training["batch_size"]),
                     ("images seen", training["images_seen"] if training["images_seen"] is not None
                      else "not recorded"),
                     ("precision", training["precision"]), ("seed", training["seed"]),
                     ("wall time", _duration(training["wall_seconds"])),
                     ("devices", ", ".join(training["devices"]) or "not recorded"),
                     ("CPU threads", training["threads"]), ("generator average", training["ema"] or "none"),
                     ("augment", training["augment"] or "none")]
    if f["evaluation"]:
        rows = ["| value | measured | step | how (protocol) |", "| --- | --- | --- | --- |"]
        rows += [f"| {m['name']} | {_value(m['value'])} | {m['step']} | {m['by']}: {_protocol(m['protocol'])} |"
                 for m in f["evaluation"]]
        evaluation = "\n".join(rows)
    else:
        evaluation = (f"Not measured: no metric was measured on these weights (step {training['steps']}). "
                      "`gan run --eval-every N` or `gan eval RUN`, then `gan card RUN -o DIR`, add the numbers.")
    conditioning = (f"Conditional on {len(f['classes'])} classes: " + ", ".join(f"`{c}`" for c in f["classes"])
                    + ". `generator.sample(n, classes=[...])` or `gan sample --class NAME` draws them."
                    if f["classes"] else "Unconditional: the generator draws from noise alone.")
    files = _table([("model.safetensors", f"the generator's weights and what rebuilds it; sha256 {sha256}"),
                    ("config.json", "components, parameters, prior, value range, classes, versions, these facts"),
                    ("samples.png", "64 samples, seed 0"), ("curves.png", "the run's losses and metrics (gan plot)")])
    license_text = (f"`{f['license']}`" if f["license"] else
                    "None stated: ask the author before reusing it (`gan card RUN -o DIR --license ID` states one).")
    return {"Loading it": loading, "Reproducing it": reproducing, "Data": _table(data_rows),
            "Training": _table(training_rows), "Evaluation": evaluation, "Conditioning": conditioning,
            "Files": files, "License": license_text}


def metadata(facts: dict[str, Any]) -> Any:
    """The front matter the hub reads: library, tags, datasets, metrics with values (model-index), license."""
    from huggingface_hub import EvalResult, ModelCardData  # ~0.4 s: cards only

    images = len(facts["data"]["sample_shape"]) == 3
    task = "unconditional-image-generation" if images and not facts["classes"] else \
        "image-generation" if images else "other"
    dataset = str(facts["data"]["dataset"])
    results = [EvalResult(task_type=task, dataset_type=dataset, dataset_name=dataset, metric_type=m["name"],
                          metric_value=m["value"], metric_name=f"{m['name']} (step {m['step']}, {m['by']})")
               for m in facts["evaluation"] if math.isfinite(m["value"])]
    components = facts["components"]
    tags = [LIBRARY, "gan", "generative-adversarial-network",
            *{str((components.get(s) or {}).get("name")) for s in ("architecture", "objective") if components.get(s)}]
    return ModelCardData(library_name=LIBRARY, license=facts["license"] or None, tags=sorted(set(tags)),
                         datasets=[dataset], metrics=sorted({m["name"] for m in facts["evaluation"]}) or None,
                         pipeline_tag=task if images else None, model_name=facts["folder"],
                         eval_results=results or None)


def render(facts: dict[str, Any], sha256: str) -> str:
    """The whole card: front matter, title, pictures, the sections of facts and the author's sections."""
    parts = [f"---\n{metadata(facts).to_yaml()}\n---", f"# {facts['title']}",
             f"A generator trained with [gan-registry]({PROJECT_URL}). Every section below except *Intended use* and "
             "*Limitations* is written by `gan export` from the run's own records; numbers not measured are not "
             "given.", "![64 samples](samples.png)", "![training curves](curves.png)"]
    parts += [f"## {title}\n\n{body}" for title, body in sections(facts, sha256).items()]
    parts += [f"## Intended use\n\n{TODO} what this generator is for, and what it is not for.",
              f"## Limitations\n\n{TODO} known failure modes, biases of the data, what the metrics do not show."]
    return "\n\n".join(parts) + "\n"


# -- checking ---------------------------------------------------------------------------------------------------
def _front_matter(text: str, where: str) -> dict[str, Any]:
    from huggingface_hub import ModelCard  # ~0.4 s: cards only

    try:
        return ModelCard(text).data.to_dict()
    except (ValueError, TypeError, AttributeError, KeyError, RecursionError, yaml.YAMLError) as error:
        said = " ".join(str(error).split(". Pass `ignore_metadata_errors")[0].split())  # hub advice, not ours
        raise UserError(f"{where}: its front matter cannot be read ({said[:120]})") from None


def _states(actual: Any, expected: Any) -> bool:
    if isinstance(expected, list) and isinstance(actual, list):  # an author may add tags, datasets, metrics
        return all(item in actual for item in expected)
    return actual == expected


def check(card: Path, facts: dict[str, Any], sha256: str) -> None:
    """Refuse a card that no longer states the facts: its front matter or a section of facts was changed."""
    try:
        text = read_text(card, limit=CARD_LIMIT)
    except FileNotFoundError:
        raise UserError(f"{card.parent} has no {CARD_NAME}: it is not a folder written by `gan export -o DIR/`") \
            from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{card} cannot be read ({error})") from None
    if not text.startswith("---\n"):
        raise UserError(f"{card} has no YAML front matter; the card was edited after `gan export` (rewrite it with "
                        "`gan card RUN -o DIR`)")
    expected = _front_matter(render(facts, sha256), f"{card.parent}/config.json")
    actual = _front_matter(text, str(card))
    changed = sorted(key for key, value in expected.items() if not _states(actual.get(key), value))
    if changed:
        raise UserError(f"{card}: its front matter's '{changed[0]}' is not what config.json records; the card was "
                        "edited after `gan export` (rewrite it with `gan card RUN -o DIR`)")
    for title, body in sections(facts, sha256).items():
        if f"## {title}\n\n{body}" not in text:
            raise UserError(f"{card}: its section '{title}' does not state what config.json records; the card was "
                            "edited after `gan export` (rewrite it with `gan card RUN -o DIR`)")
