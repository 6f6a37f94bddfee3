"""Sharing a model: `gan export -o DIR/` writes weights, config.json and a model card made of the run's facts; the
hub's own parser reads the card; `load_generator` draws what `gan sample` draws; a folder whose weights, config or
card disagree is refused by `gan export --verify` and by loading. Real runs of a few steps, real `gan` processes."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import markdown
import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file, save_file

import gan_registry as gr
from gan_registry.testing import invoke_gan, run_gan

ROOT = Path(__file__).resolve().parents[1]
POINTS = {"arch": "mlp", "objective": "gan", "dataset": "gaussians", "batch_size": 64, "device": "cpu",
          "params": {"dataset": {"count": 2048}}}


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A run measured by --eval-every and its export folder; a run never measured and its export."""
    root = tmp_path_factory.mktemp("cards")
    gr.Run.new(**POINTS, steps=12, seed=1, eval_every=6, eval_metrics=["mode-coverage"], eval_samples=500,
               out=root / "measured").train()
    gr.Run.new(**POINTS, steps=4, out=root / "plain").train()
    for run, folder in (("measured", "model"), ("plain", "plain-model")):
        result = invoke_gan("export", root / run, "-o", f"{root / folder}/")
        assert result.exit_code == 0, result.output
    return root


def card_of(folder: Path) -> str:
    return (folder / "README.md").read_text()


def one_line_refusal(done: subprocess.CompletedProcess, fragment: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert fragment in done.stderr, done.stderr


def test_the_folder_holds_what_the_hub_shows(shared):
    assert sorted(p.name for p in (shared / "model").iterdir()) == [
        "README.md", "config.json", "curves.png", "model.safetensors", "samples.png"]


def test_card_facts_are_the_runs_config_and_measurements(shared):
    config = json.loads((shared / "measured" / "config.json").read_text())
    text = card_of(shared / "model")
    settings = config["settings"]
    command = next(line for line in text.splitlines() if line.startswith("gan run "))
    for flag, value in (("--steps", 12), ("--seed", 1), ("--batch-size", 64), ("--eval-every", 6),
                        ("--eval-samples", 500), ("--eval-metric", "mode-coverage"), ("--device", "cpu")):
        setting = {"--eval-metric": "eval_metrics"}.get(flag, flag[2:].replace("-", "_"))
        assert f"{flag} {value}" in command and settings[setting] in (value, [value])
    assert "-p dataset.count=2048" in command
    assert f"| steps | 12 |" in text and "| batch size | 64 |" in text and "| images seen | 768 |" in text
    assert "| samples | 2048 |" in text  # the training split, counted
    measured = {}
    for line in (shared / "measured" / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["step"] == 12:
            measured.update({k: v for k, v in record.items() if k.startswith(("eval/", "final/"))})
    values = [v for k, v in measured.items() if k != "eval/best_step"]
    stated = [r.metric_value for r in ModelCard.load(shared / "model" / "README.md").data.eval_results]
    assert stated == values and len(values) == 8  # mode-coverage's four values, at step 12 and at the end
    assert f"| modes_covered | {measured['eval/modes_covered']} | 12 | --eval-every: metrics: mode-coverage; samples: " \
           "500 |" in text


def test_the_hub_parser_reads_the_card_and_its_markdown_renders(shared):
    card = ModelCard.load(shared / "model" / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "gan-registry" and data["datasets"] == ["gaussians"]
    assert {"gan-registry", "mlp", "gan"} <= set(data["tags"]) and "modes_covered" in data["metrics"]
    assert "license" not in data  # none stated, none invented
    html = markdown.markdown(card.text, extensions=["tables", "fenced_code"])
    assert '<img alt="64 samples" src="samples.png"' in html and html.count("<table>") == 4
    assert "<h2>Limitations</h2>" in html and "TODO (author):" in html


def test_a_card_with_no_evaluation_says_not_measured(shared):
    text = card_of(shared / "plain-model")
    assert "Not measured: no metric was measured on these weights (step 4)" in text
    data = ModelCard.load(shared / "plain-model" / "README.md").data
    assert data.eval_results is None and not data.to_dict().get("metrics")


def test_load_generator_draws_what_gan_sample_draws(shared, tmp_path):
    generator = gr.load_generator(shared / "model")
    assert isinstance(generator.module, torch.nn.Module) and generator.sample_shape == (2,)
    ours = generator.sample(50, seed=7)
    done = run_gan("sample", shared / "model", "-n", "50", "--seed", "7", "-o", tmp_path / "s.npy")
    assert done.returncode == 0, done.stderr
    assert torch.equal(ours, torch.from_numpy(np.load(tmp_path / "s.npy")))
    assert torch.equal(ours, gr.load_generator(shared / "model" / "model.safetensors").sample(50, seed=7))


def tampered(shared: Path, into: Path) -> Path:
    shutil.copytree(shared / "model", into)
    weights = into / "model.safetensors"
    with open(weights, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    tensors = load_file(weights)
    first = sorted(tensors)[0]
    tensors[first] = tensors[first] + 1
    save_file(tensors, weights, metadata=header["__metadata__"])
    return into


def test_tampered_weights_are_refused_by_verify_sample_and_loading(shared, tmp_path):
    untouched = invoke_gan("export", "--verify", shared / "model")
    assert untouched.exit_code == 0 and "agree" in untouched.output, untouched.output
    folder = tampered(shared, tmp_path / "tampered")
    one_line_refusal(run_gan("export", "--verify", folder), "the weights were changed after `gan export`")
    sampled = invoke_gan("sample", folder, "-o", tmp_path / "x.png")
    assert sampled.exit_code == 2 and "its sha256 is" in sampled.output and not (tmp_path / "x.png").exists()
    with pytest.raises(gr.UserError, match="the weights were changed"):
        gr.load_generator(folder)


@pytest.mark.parametrize("edit, fragment", [
    (lambda t: t.replace("| steps | 12 |", "| steps | 1200 |"), "its section 'Training' does not state"),
    (lambda t: re.sub(r"(type: modes_covered\n\s+value: )\d+", r"\g<1>8", t, count=1),
     "its front matter's 'model-index' is not what config.json records"),
    (lambda t: t.replace("library_name: gan-registry", "library_name: diffusers"), "front matter's 'library_name'"),
    (lambda t: t.split("---\n", 2)[2], "has no YAML front matter"),
    (lambda t: t.replace("library_name: gan-registry", "library_name: !!python/object/apply:os.system [id]"),
     "its front matter cannot be read (could not determine a constructor"),
])
def test_an_edited_card_is_refused(shared, tmp_path, edit, fragment):
    folder = tmp_path / "edited"
    shutil.copytree(shared / "model", folder)
    text = card_of(folder)
    assert edit(text) != text
    (folder / "README.md").write_text(edit(text))
    result = invoke_gan("export", "--verify", folder)
    assert result.exit_code == 2 and fragment in result.output, result.output
    with pytest.raises(gr.UserError, match=re.escape(fragment)):
        gr.load_generator(folder)


def test_the_author_fills_in_the_todo_sections_and_adds_tags(shared, tmp_path):
    folder = tmp_path / "authored"
    shutil.copytree(shared / "model", folder)
    text = card_of(folder).replace("TODO (author): what this generator is for, and what it is not for.",
                                   "A toy: points on a ring.").replace("tags:\n", "tags:\n- toy\n")
    (folder / "README.md").write_text(text.replace("# mlp + gan on gaussians", "# A ring of points"))
    assert invoke_gan("export", "--verify", folder).exit_code == 0
    assert gr.load_generator(folder).sample(4).shape == (4, 2)


def test_an_edited_config_is_refused(shared, tmp_path):
    folder = tmp_path / "config"
    shutil.copytree(shared / "model", folder)
    config = json.loads((folder / "config.json").read_text())
    config["latent_dim"] = 3
    (folder / "config.json").write_text(json.dumps(config))
    result = invoke_gan("export", "--verify", folder)
    assert result.exit_code == 2 and "its 'latent_dim' is not what model.safetensors holds" in result.output


def test_gan_card_rewrites_the_card_after_gan_eval(shared, tmp_path):
    run, folder = tmp_path / "plain", tmp_path / "plain-model"
    shutil.copytree(shared / "plain", run)
    shutil.copytree(shared / "plain-model", folder)
    assert invoke_gan("eval", run, "--metric", "mode-coverage", "--samples", "300").exit_code == 0
    result = invoke_gan("card", run, "-o", folder)
    assert result.exit_code == 0, result.output
    report = json.loads((run / "eval.json").read_text())
    stated = {r.metric_type: r.metric_value for r in ModelCard.load(folder / "README.md").data.eval_results}
    assert stated == report["metrics"]["mode-coverage"]
    assert "| gan eval: metrics: mode-coverage; samples: 300; seed: 0" in card_of(folder)
    assert invoke_gan("export", "--verify", folder).exit_code == 0
    gr.Run.open(run).train(steps=6)  # other weights now: their card is not this folder's
    result = invoke_gan("card", run, "-o", folder)
    assert result.exit_code == 2 and "holds the weights of another checkpoint" in result.output


def test_a_resume_on_another_process_count_is_in_the_reproducing_commands(tmp_path):
    run = tmp_path / "split"
    gr.Run.new(**POINTS, steps=3, out=run).train()
    done = run_gan("resume", run, "--steps", "6", "--nproc", "2", "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    result = invoke_gan("card", run)
    assert result.exit_code == 0, result.output
    commands = [line for line in result.output.splitlines() if line.startswith("gan ")]
    assert commands[0].startswith("gan run --arch mlp --objective gan --dataset gaussians")
    assert commands[0].endswith(f"--steps 3 --out split") and "--nproc" not in commands[0]
    assert commands[1:] == ["gan resume split --steps 6 --nproc 2"]
    assert "from step 0, 1 process; from step 3, 2 processes" in result.output


def test_export_folder_refusals(shared, tmp_path):
    again = invoke_gan("export", shared / "plain", "-o", f"{shared / 'plain-model'}/")
    assert again.exit_code == 2 and "already holds model.safetensors; pass --force" in again.output
    license_file = invoke_gan("export", shared / "plain", "-o", tmp_path / "m.safetensors", "--license", "mit")
    assert license_file.exit_code == 2 and "export to a folder" in license_file.output
    not_a_folder = invoke_gan("export", "--verify", shared / "plain")
    assert not_a_folder.exit_code == 2 and "is not the config of a `gan export -o DIR/` folder" in not_a_folder.output


def test_the_docs_loading_snippet_runs(shared, tmp_path, monkeypatch):
    page = (ROOT / "docs" / "sharing.md").read_text()
    snippet = re.search(r"```python\n(import gan_registry as gr\n.*?)```", page, re.S).group(1)
    assert len(snippet.strip().splitlines()) == 3
    folder = re.search(r'load_generator\("([^"]+)"\)', snippet).group(1)
    shutil.copytree(shared / "model", tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(snippet, names)
    assert names["samples"].shape == (16, 2)


def test_the_troubleshooting_page_shows_these_refusals():
    page = (ROOT / "docs" / "troubleshooting.md").read_text()
    for fragment in ("already holds model.safetensors; pass --force", "the weights were changed after `gan export`",
                     "its section 'Training' does not state what config.json records",
                     "holds the weights of another checkpoint", "is not the config of a `gan export -o DIR/` folder"):
        assert any(line.startswith("| ") and fragment in line for line in page.splitlines()), fragment


def test_the_docs_card_is_a_real_export_that_verifies():
    result = invoke_gan("export", "--verify", ROOT / "docs" / "examples" / "ring-model")
    assert result.exit_code == 0, result.output
    assert "8 | 1000 | --eval-every" in (ROOT / "docs" / "examples" / "ring-model" / "README.md").read_text()
