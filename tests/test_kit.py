"""The quality kit in the engine: the generator average (--ema), augmentations (--augment) and the step that lazy
regularisers key on. Each is checked against what it should compute, and against resuming."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import pytest
import torch

from gan_registry import Augment, IncompatibleError, Run, checkpoint, hookimpl
from gan_registry._plan import EMA_KEY, Settings, make_plan
from gan_registry.errors import UserError
from gan_registry.plugins import load_registry
from gan_registry.runs import load_networks
from gan_registry.testing import isolated_registry
from gan_registry.training import Trainer

DIGITS = dict(arch="dcgan", objective="gan", dataset="digits", image_size=16, batch_size=16, device="cpu",
              params={"arch": {"base": 8}})


def _trainer(tmp_path, registry=None, **settings):
    plan = make_plan(registry or load_registry(), Settings(**{**DIGITS, **settings}))
    for folder in ("samples", "checkpoints"):
        (tmp_path / "run" / folder).mkdir(parents=True, exist_ok=True)
    return Trainer(plan, tmp_path / "run", torch.device("cpu"), progress=False)


def _weights(module):
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize("batchnorm", ["copy", "track"])
def test_average_follows_the_closed_form_and_keeps_batchnorm_statistics_apart(tmp_path, batchnorm):
    trainer = _trainer(tmp_path, ema=0.75, sample_every=1000,
                       params={**DIGITS["params"], "callback": {"batchnorm": batchnorm}})
    average, generator = trainer.models[EMA_KEY], trainer.models["generator"]
    assert trainer.sampling_generator is average
    expected = _weights(generator)  # the average starts as a copy of the initial weights
    for step in (1, 2, 3):
        trainer.train(max_steps=step)
        expected = [0.75 * e + 0.25 * w for e, w in zip(expected, _weights(generator))]
        for kept, want in zip(average.parameters(), expected):
            torch.testing.assert_close(kept, want, rtol=1e-5, atol=1e-7)
    assert not all(torch.equal(a, b) for a, b in zip(average.parameters(), generator.parameters()))
    buffers = dict(generator.named_buffers())
    assert any("running_mean" in name for name in buffers)
    for name, kept in average.named_buffers():
        if batchnorm == "copy" or not ("running" in name or "batches_tracked" in name):
            assert torch.equal(kept, buffers[name]), name  # copied, not averaged
        elif "running" in name:  # the average's own statistics, from its own pass of noise (one a step, as G's)
            assert not torch.equal(kept, buffers[name]), name
    assert not any(p.requires_grad for p in trainer.trained.parameters() if any(p is q for q in average.parameters()))
    assert EMA_KEY not in trainer.trained  # the objective never trains the average


def test_average_is_a_copy_until_its_start_step(tmp_path):
    trainer = _trainer(tmp_path, ema=0.9, ema_start=2, sample_every=1000)
    trainer.train(max_steps=2)
    for kept, trained in zip(trainer.models[EMA_KEY].parameters(), trainer.models["generator"].parameters()):
        assert torch.equal(kept, trained)
    trainer.train(max_steps=3)
    assert not all(torch.equal(k, t) for k, t in zip(trainer.models[EMA_KEY].parameters(),
                                                       trainer.models["generator"].parameters()))


def test_half_life_ramps_up_with_the_images_seen_as_in_stylegan2():
    from gan_registry._callbacks import AverageParams, GeneratorAverage

    settings = Settings(arch="mlp", objective="gan", batch_size=64, ema_half_life=10_000)
    ramped, fixed = GeneratorAverage(), GeneratorAverage(AverageParams(rampup=None))
    # after 300 steps (19,200 images) the half-life is 5% of them, 960 images: 15 steps
    assert ramped.decay(settings, 300) == pytest.approx(0.5 ** (64 / 960))
    assert ramped.decay(settings, 100_000) == pytest.approx(settings.ema_decay())  # capped at the half-life
    assert fixed.decay(settings, 300) == settings.ema_decay()
    assert GeneratorAverage().decay(Settings(arch="mlp", objective="gan", ema=0.9), 3) == 0.9  # --ema: no ramp


def test_half_life_in_images_sets_the_decay():
    settings = Settings(arch="mlp", objective="gan", batch_size=64, ema_half_life=6400)
    assert settings.ema_decay() == pytest.approx(0.5 ** 0.01)
    # after half_life images (100 steps of 64) a weight's share has halved
    assert settings.ema_decay() ** 100 == pytest.approx(0.5)
    with pytest.raises(UserError, match="not both"):
        Settings(arch="mlp", objective="gan", ema=0.9, ema_half_life=100)


def test_samples_evaluation_and_export_use_the_average(tmp_path):
    run = Run.new(out=tmp_path / "run", steps=3, ema=0.5, **DIGITS).train()
    state = checkpoint.load(run.dir / "checkpoints" / "last.pt")["models"]
    average = {k[len(EMA_KEY) + 1:]: v for k, v in state.items() if k.startswith(EMA_KEY + ".")}
    trained = {k[len("generator."):]: v for k, v in state.items() if k.startswith("generator.")}
    assert average.keys() == trained.keys() and any(not torch.equal(average[k], trained[k]) for k in average)
    _, networks = load_networks(load_registry(), run.dir)
    assert all(torch.equal(v, average[k]) for k, v in networks["generator"].state_dict().items())
    _, raw = load_networks(load_registry(), run.dir, average=False)
    assert all(torch.equal(v, trained[k]) for k, v in raw["generator"].state_dict().items())
    run.export(tmp_path / "g.safetensors")
    from safetensors.torch import load_file

    exported = load_file(tmp_path / "g.safetensors")
    assert exported.keys() == average.keys() and all(torch.equal(exported[k], average[k]) for k in average)


# -- augmentations: the engine's side of the contract, with a plugin of the test's own ------------------------
SEEN: dict[str, list] = {"inputs": [], "observed": []}


@dataclass
class FlipParams:
    lr: float = field(default=0.0, metadata={"help": "unused; shows params reach the factory"})


class Flip(torch.nn.Module):
    """Mirrors every image left-right: differentiable, deterministic, and visible in what D is given."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        SEEN["inputs"].append(x.shape[0])
        self.calls += 1
        return x.flip(-1)

    def observe_real(self, scores):
        SEEN["observed"].append(scores.shape[0])

    def end_step(self, step):
        return {"augment/calls": self.calls}


def _build_flip(params, spec):
    if len(spec.sample_shape) != 3:
        raise IncompatibleError("flip mirrors images")
    return Flip()


class FlipPlugin:
    @staticmethod
    @hookimpl
    def register_augments(register):
        register(Augment(name="flip", summary="mirror images", params=FlipParams, factory=_build_flip))


def test_augment_sees_every_batch_d_judges_and_observes_only_real_ones(tmp_path):
    registry = isolated_registry(("flip", FlipPlugin), entry_points=True)
    SEEN["inputs"].clear(), SEEN["observed"].clear()
    trainer = _trainer(tmp_path, registry, augment="flip", log_every=1, sample_every=1000)
    assert trainer.trained["discriminator"].discriminator is trainer.models["discriminator"]
    trainer.train(max_steps=2)
    # per step: D judges a real and a fake batch, G a fake one; only the real ones are observed
    assert SEEN["inputs"] == [16] * 6 and SEEN["observed"] == [16, 16]
    state = trainer.state_dict()
    assert torch.equal(state["augment"]["calls"], torch.tensor(6.0))
    assert not any(k.startswith("discriminator.augment") for k in state["models"])
    lines = (trainer.run_dir / "metrics.jsonl").read_text()
    assert '"augment/calls": 3.0' in lines and '"augment/calls": 6.0' in lines
    with pytest.raises(IncompatibleError, match="augment 'flip' does not fit this run"):
        make_plan(registry, Settings(arch="mlp", objective="gan", dataset="gaussians", augment="flip"))


def test_without_augment_the_objective_gets_the_networks_themselves(tmp_path):
    trainer = _trainer(tmp_path)
    assert trainer.augment is None and trainer.trained["discriminator"] is trainer.models["discriminator"]
    assert set(trainer.trained) == {"generator", "discriminator"}


def test_batches_carry_the_engine_step(tmp_path):
    steps = []
    trainer = _trainer(tmp_path, sample_every=1000)
    loss = trainer.phases[0].loss
    trainer.phases[0].loss = lambda models, batch: (steps.append(batch.step), loss(models, batch))[1]
    trainer.train(max_steps=3)
    assert steps == [0, 1, 2]


def test_resume_is_bit_exact_with_every_switch_on(tmp_path):
    """The average, adaptive augmentation, lazy R1 (due on steps the stop falls between) and spectral norm."""
    kit = dict(DIGITS, ema=0.9, augment="diffaugment", seed=4, params={
        "arch": {"base": 8, "spectral_norm": True}, "objective": {"r1": 1.0, "penalty_every": 2},
        "augment": {"target": 0.6, "interval": 1, "speed": 500}})
    straight = Run.new(out=tmp_path / "straight", steps=5, **kit).train()
    split = Run.new(out=tmp_path / "split", steps=3, **kit).train()
    Run.open(tmp_path / "split").train(steps=5)
    a, b = (checkpoint.load(run.dir / "checkpoints" / "last.pt") for run in (straight, split))
    assert a["models"].keys() == b["models"].keys()
    assert any("_u" in key for key in a["models"]) and any(key.startswith(EMA_KEY) for key in a["models"])
    for key in a["models"]:
        assert torch.equal(a["models"][key], b["models"][key]), key
    for key in a["augment"]:
        assert torch.equal(a["augment"][key], b["augment"][key]), key
    assert 0 < float(a["augment"]["p"]) < 1  # the probability moved, so its resume was tested


def test_a_checkpoint_written_at_an_epoch_end_holds_that_steps_average(tmp_path):
    toy = dict(arch="mlp", objective="gan", dataset="gaussians", batch_size=16, device="cpu", ema=0.5,
               lr_decay_start=1.0, params={"dataset": {"count": 64}})  # the same rates, whatever the length  # 4 steps an epoch: the epoch's end writes step-4.pt
    kept = Run.new(out=tmp_path / "kept", steps=6, keep=3, **toy).train()
    short = Run.new(out=tmp_path / "short", steps=4, **toy).train()
    a = checkpoint.load(kept.dir / "checkpoints" / "step-0000004.pt")["models"]
    b = checkpoint.load(short.dir / "checkpoints" / "last.pt")["models"]
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_only_phases_that_train_the_discriminator_feed_the_adaptive_augment(tmp_path):
    SEEN["observed"].clear()
    registry = isolated_registry(("flip", FlipPlugin), entry_points=True)
    trainer = _trainer(tmp_path, registry, objective="rpgan", augment="flip", sample_every=1000)
    trainer.train(max_steps=2)  # rpgan's generator phase judges a real batch too: not an observation
    assert SEEN["observed"] == [16, 16]
