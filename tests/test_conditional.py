"""Class-conditional runs: negotiated in the plan, labels bound by the engine, drawn by `gan sample --class`."""
from __future__ import annotations

import json
import pickle
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gan_registry import Generator, IncompatibleError, PluginFailure, checkpoint, hookimpl
from gan_registry._conditioning import ConditionedDiscriminator, ConditionedGenerator
from gan_registry.plugins import load_registry
from gan_registry.testing import build, invoke_gan, run_gan

DIGITS = ["--dataset", "digits", "--image-size", "16", "--batch-size", "16"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A conditional mlp run (projection) and its export; an ACGAN dcgan run."""
    root = tmp_path_factory.mktemp("conditional")
    common = ["run", *DIGITS, "--conditional", "--steps", "3", "--no-progress", "--log-every", "1"]
    result = invoke_gan(*common, "--arch", "mlp", "--objective", "gan", "--out", root / "mlp")
    assert result.exit_code == 0, result.output
    result = invoke_gan(*common, "--arch", "dcgan", "--objective", "hinge", "-p", "discriminator.conditioning=acgan",
                        "-p", "discriminator.acgan_weight=0.5", "--out", root / "acgan")
    assert result.exit_code == 0, result.output
    assert invoke_gan("export", root / "mlp", "-o", root / "mlp.safetensors").exit_code == 0
    return root


def test_the_plan_conditions_on_the_dataset_classes():
    conditional = build(arch="mlp", objective="gan", dataset="digits", conditional=True)
    assert conditional.spec.num_classes == 10
    assert build(arch="mlp", objective="gan", dataset="digits").spec.num_classes is None


@pytest.mark.parametrize("settings, fragment", [
    ({"arch": "mlp", "objective": "gan", "dataset": "gaussians"}, "dataset 'gaussians' has none"),
    ({"arch": "lenet", "objective": "gan"}, "generator 'convt' cannot condition on labels"),
    ({"arch": "aae", "objective": "aae"}, "judges latent codes"),
], ids=["unlabelled-data", "unconditional-piece", "latent-discriminator"])
def test_misfits_are_refused(settings, fragment):
    with pytest.raises(IncompatibleError, match=fragment):
        build(conditional=True, **settings)


@dataclass
class _Params:
    pass


def _deaf_generator(params, spec):
    from gan_registry import layers

    class Deaf(torch.nn.Module):  # registered conditional=True, and ignores its labels
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(spec.latent_dim, int(np.prod(spec.sample_shape)))

        def forward(self, z, condition=None):
            return layers.to_range(self.net(z), spec.value_range).view(len(z), *spec.sample_shape)

    return Deaf()


class _DeafPlugin:
    @staticmethod
    @hookimpl
    def register_architectures(register):
        register(Generator(name="deaf", summary="ignores its labels", params=_Params, factory=_deaf_generator,
                           conditional=True))


def test_a_conditional_piece_that_ignores_its_labels_breaks_its_contract():
    registry = load_registry([("deaf", _DeafPlugin)], entry_points=True, env={})
    with pytest.raises(PluginFailure, match="the same noise under two labels made the same sample"):
        build(registry, arch="mlp", generator="deaf", objective="gan", dataset="digits", conditional=True)


def _wrapped(conditioning="projection", weight=1.0):
    built = build(arch="mlp", objective="gan", dataset="digits", image_size=8, conditional=True,
                  params={"discriminator": {"conditioning": conditioning, "acgan_weight": weight}})
    generator, discriminator = built.networks["generator"], built.networks["discriminator"]
    maker = ConditionedGenerator(generator, torch.ones(10))
    return maker, ConditionedDiscriminator(discriminator, maker, owner=None), discriminator


def test_every_call_of_a_phase_is_conditioned_on_the_phase_labels():
    torch.manual_seed(0)
    maker, judge, discriminator = _wrapped()
    real, labels = torch.rand(6, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 3, 4, 5])
    judge.begin(labels, real)
    fake = maker(torch.randn(6, 64))
    mixed = 0.3 * real + 0.7 * fake.detach()
    with torch.no_grad():
        for x in (real, fake.detach(), mixed):
            assert torch.equal(judge(x), discriminator(x, labels))
        assert torch.equal(judge(torch.cat([real, fake])), discriminator(torch.cat([real, fake]), labels.repeat(2)))
        # A later phase with other labels still judges the fakes made earlier under their own labels.
        judge.begin(labels.flip(0), None)
        assert torch.equal(judge(fake.detach()), discriminator(fake.detach(), labels))


def test_the_discriminators_optimiser_holds_the_discriminators_parameters_only(tmp_path):
    from gan_registry._plan import Settings, make_plan
    from gan_registry.training import Trainer

    plan = make_plan(load_registry(), Settings(arch="mlp", objective="gan", conditional=True, dataset="digits",
                                               image_size=16, batch_size=16, steps=1))
    trainer = Trainer(plan, tmp_path, torch.device("cpu"), progress=False, callbacks=[])
    held = {p.name: {id(t) for group in p.optimizer.param_groups for t in group["params"]} for p in trainer.phases}
    assert held["discriminator"] == {id(t) for t in trainer.models["discriminator"].parameters()}
    assert held["generator"] == {id(t) for t in trainer.models["generator"].parameters()}
    assert trainer.shared_fake is not None and trainer._trains_maker == [False, True]  # one generator forward a step


def test_acgan_adds_its_paper_classification_loss_on_real_and_generated_samples_only():
    """Odena et al. 2017: D maximises L_S + L_C, G maximises L_C - L_S, L_C = E log P(C=c | X_real) + E log P(C=c |
    X_fake): the engine adds weight x the cross-entropy of the classifier on both to every phase; not on the
    interpolates of a gradient penalty, which have no class."""
    torch.manual_seed(1)
    maker, judge, discriminator = _wrapped("acgan", weight=0.5)
    real, labels = torch.rand(6, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 3, 4, 5])
    judge.begin(labels, real)
    fake = maker(torch.randn(6, 64))
    scores = judge(real), judge(fake)
    judge(0.5 * real + 0.5 * fake)
    auxiliary = judge.take_auxiliary()
    head = discriminator.condition.classify

    def cross_entropy(x):
        features = discriminator.net[:-1](x)
        return -F.log_softmax(head(features), dim=1).gather(1, labels[:, None]).mean()

    assert torch.allclose(auxiliary, 0.5 * (cross_entropy(real) + cross_entropy(fake)), atol=1e-6)
    assert all(s.shape == (6,) for s in scores)
    auxiliary.backward()
    assert maker.generator.net[0].weight.grad.abs().sum() > 0  # the generator learns to make its class
    assert judge.take_auxiliary() is None


def test_acgan_runs_log_the_classification_loss_of_both_phases(runs):
    lines = [json.loads(line) for line in (runs / "acgan" / "metrics.jsonl").read_text().splitlines()]
    assert all(line["discriminator/classification"] > 0 and line["generator/classification"] > 0 for line in lines)


def test_sample_draws_the_class_asked_for_from_a_run_and_its_export(runs, tmp_path):
    for source in (runs / "mlp", runs / "mlp.safetensors"):
        result = invoke_gan("sample", source, "--class", "3", "-n", "6", "-o", tmp_path / f"{source.name}.pt")
        assert result.exit_code == 0, result.output
    from_run, from_export = (torch.load(tmp_path / f"{n}.pt") for n in ("mlp", "mlp.safetensors"))
    assert torch.equal(from_run, from_export)
    other = invoke_gan("sample", runs / "mlp", "--class", "4", "-n", "6", "-o", tmp_path / "four.pt")
    assert other.exit_code == 0 and not torch.equal(torch.load(tmp_path / "four.pt"), from_run)


def test_a_conditional_grid_has_a_row_per_class(runs, tmp_path):
    assert invoke_gan("sample", runs / "mlp", "-n", "20", "-o", tmp_path / "all.png").exit_code == 0
    with Image.open(tmp_path / "all.png") as image:  # 10 rows of 2 images of 16 px, 2 px apart
        assert image.size == (2 * 18 + 2, 10 * 18 + 2)
    grids = sorted((runs / "mlp" / "samples").glob("final-*.png"))
    with Image.open(grids[-1]) as image:
        assert image.size == (8 * 18 + 2, 10 * 18 + 2)


def test_the_export_carries_the_class_names(runs):
    from safetensors import safe_open

    with safe_open(str(runs / "mlp.safetensors"), framework="pt") as f:
        meta = f.metadata()
    assert json.loads(meta["classes"]) == [str(d) for d in range(10)]
    assert len(json.loads(meta["class_frequencies"])) == 10


def test_sample_refuses_a_class_the_run_has_not_in_a_real_subprocess(runs, tmp_path):
    result = run_gan("sample", runs / "mlp", "--class", "99", "-o", tmp_path / "x.png")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--class 99: the run has 10 classes" in result.stderr and not (tmp_path / "x.png").exists()


def test_conditional_runs_resume_bit_exact(tmp_path):
    base = ["run", "--arch", "mlp", "--objective", "gan", *DIGITS, "--conditional", "--no-progress"]
    assert invoke_gan(*base, "--steps", "4", "--out", tmp_path / "straight").exit_code == 0
    assert invoke_gan(*base, "--steps", "2", "--out", tmp_path / "split").exit_code == 0
    assert invoke_gan("resume", tmp_path / "split", "--steps", "4", "--no-progress").exit_code == 0
    a, b = (checkpoint.load(tmp_path / d / "checkpoints" / "last.pt") for d in ("straight", "split"))
    assert all(torch.equal(a["models"][k], b["models"][k]) for k in a["models"])


def _tiny_cifar(folder, per_batch=20):
    """cifar-10-batches-py as the official archive has it: pickled dicts of uint8 rows (1024 R, G, B) and labels."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        entry = {"batch_label": name, "data": data, "labels": [i % 10 for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))


def test_resnet_hinge_projection_trains_a_step_on_cifar_format_files(tmp_path):
    _tiny_cifar(tmp_path / "data" / "cifar-10-batches-py")
    result = invoke_gan("run", "--arch", "resnet", "--objective", "hinge", "--dataset", "cifar10", "--data-dir",
                        tmp_path / "data", "-p", "dataset.verify=false", "--conditional", "--steps", "1",
                        "--batch-size", "8", "-p", "generator.width=16", "-p", "discriminator.width=16",
                        "--no-progress", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    state = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] == 1
    assert "discriminator.condition.embed.parametrizations.weight.original" in state["models"]
    assert invoke_gan("sample", tmp_path / "run", "--class", "cat", "-n", "4", "-o", tmp_path / "cats.png").exit_code == 0
