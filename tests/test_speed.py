"""Speed without changing the math: one generator forward per iteration, --precision, --compile, no host sync
in the hot loop, lean start-up."""
from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from gan_registry import checkpoint, input_gradients
from gan_registry._plan import Settings, make_plan
from gan_registry._speed import _SCALER, Precision
from gan_registry.plugins import load_registry
from gan_registry.testing import HANG_S, count_host_syncs, invoke_gan
from gan_registry.training import Trainer

REGISTRY = load_registry()


@pytest.fixture
def keep_kernel_settings():
    """--deterministic in-process sets torch's process-wide switch: put it back for the tests that follow."""
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


def trainer(tmp_path, callbacks=(), **settings):
    settings = {"dataset": "digits", "batch_size": 16, "device": "cpu", "steps": 100, "image_size": 16,
                "log_every": 1000, "sample_every": 1000, **settings}
    plan = make_plan(REGISTRY, Settings(**settings), for_training=True)
    torch.manual_seed(0)
    return Trainer(plan, tmp_path, torch.device("cpu"), progress=False,
                   callbacks=None if callbacks is None else list(callbacks))


def calls_of(module):
    calls = []
    module.register_forward_hook(lambda m, inputs, output: calls.append((inputs[0], output)))
    return calls


@pytest.mark.parametrize("objective, forwards_per_step", [("gan", 1), ("hinge", 1), ("rpgan", 1), ("wgan-gp", 6)])
def test_one_generator_forward_per_iteration_unless_a_phase_repeats(tmp_path, objective, forwards_per_step):
    run = trainer(tmp_path, arch="mlp", objective=objective)
    calls = calls_of(run.models["generator"])
    run.train(max_steps=4)
    assert len(calls) == 4 * forwards_per_step  # wgan-gp: 5 critic steps of their own noise, then the generator's


def test_the_generator_phase_judges_the_discriminator_phase_samples(tmp_path):
    run = trainer(tmp_path, arch="mlp", objective="gan")
    judged = calls_of(run.models["discriminator"])
    run.train(max_steps=1)
    (real, _), (fake_detached, _), (fake, _) = judged
    assert fake.data_ptr() == fake_detached.data_ptr() and fake.grad_fn is not None and fake_detached.grad_fn is None


def test_a_step_is_the_pytorch_dcgan_tutorial_step(tmp_path):
    """Same weights, same real batch and noise: the engine's gan step ends where the tutorial's loop ends."""
    run = trainer(tmp_path, arch="mlp", objective="gan", ema=0)
    G0, D0 = copy.deepcopy(run.models["generator"]), copy.deepcopy(run.models["discriminator"])
    noise, judged = calls_of(run.models["generator"]), calls_of(run.models["discriminator"])
    run.train(max_steps=1)
    z, real = noise[0][0], judged[0][0]

    opt_d = torch.optim.Adam(D0.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G0.parameters(), lr=2e-4, betas=(0.5, 0.999))
    fake = G0(z)
    real_logits, fake_logits = D0(real), D0(fake.detach())
    loss_d = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
              + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = F.softplus(-D0(fake)).mean()  # the tutorial's BCE(D(G(z)), 1) as gan computes it: Adam's first
    # step, lr * g / (|g| + eps), turns a rounding difference of a tiny gradient into a whole step
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    for ours, theirs in ((run.models["generator"], G0), (run.models["discriminator"], D0)):
        for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
            assert torch.equal(a, b), name


def _penalty_inputs():
    from gan_registry.testing import build

    built = build(arch="dcgan", objective="wgan-gp", dataset="digits", image_size=16)
    g = torch.Generator().manual_seed(0)
    real, fake = torch.rand(16, 1, 16, 16, generator=g) * 2 - 1, torch.rand(16, 1, 16, 16, generator=g) * 2 - 1
    return built.networks["discriminator"], real, fake, torch.rand(16, generator=g)


@pytest.mark.parametrize("precision, tolerance", [("bf16", 0.05), ("16", 0.01)])
def test_gradient_penalties_under_autocast_match_fp32(precision, tolerance):
    from gan_registry_objectives._common import zero_centred_penalty
    from gan_registry_objectives.wgan_gp import gradient_penalty

    critic, real, fake, alpha = _penalty_inputs()

    def penalties():
        gp = gradient_penalty(critic, real, fake, alpha)
        x = real.clone().requires_grad_(True)
        r1 = zero_centred_penalty(critic(x).reshape(-1), x)
        first = next(critic.parameters())
        (weight_grad,) = torch.autograd.grad(gp + r1, [first])  # the double backward
        return gp, r1, weight_grad

    exact = penalties()
    mixed = Precision(precision, torch.device("cpu"), ["critic"])
    if mixed.scalers:  # a scale the scaler settles on: its first, 2**16, overflows fp16 here and skips the step
        mixed.scalers["critic"] = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    with mixed.loss("critic"):
        low = penalties()
    for a, b in zip(exact[:2], low[:2]):
        assert torch.isfinite(b) and abs(b.item() - a.item()) <= tolerance * abs(a.item()), (a, b)
    assert F.cosine_similarity(exact[2].flatten(), low[2].flatten(), dim=0) > 0.99


def test_input_gradients_take_the_loss_scale_off_exactly():
    x = torch.randn(8, 3, requires_grad=True)
    w = torch.randn(3)
    plain = input_gradients((x * w).sin().sum(1), x)
    scaled = Precision("16", torch.device("cpu"), ["critic"])
    token = _SCALER.set(scaled.scalers["critic"])  # the scaler alone, without autocast: only the scale differs
    try:
        assert torch.equal(input_gradients((x * w).sin().sum(1), x), plain)  # a power-of-two scale is exact
    finally:
        _SCALER.reset(token)


def test_fp16_and_bf16_runs_checkpoint_and_resume(tmp_path):
    base = ["run", "--arch", "mlp", "--objective", "wgan-gp", "--dataset", "digits", "--image-size", "16",
            "--batch-size", "16", "--steps", "3", "--no-progress", "--log-every", "1"]
    result = invoke_gan(*base, "--precision", "16", "--out", tmp_path / "fp16")
    assert result.exit_code == 0, result.output
    state = checkpoint.load(tmp_path / "fp16" / "checkpoints" / "last.pt")
    assert set(state["grad_scalers"]) == {"critic", "generator"} and state["settings"]["precision"] == "16"
    assert "precision/skipped_critic" in (tmp_path / "fp16" / "metrics.jsonl").read_text()
    assert invoke_gan("resume", tmp_path / "fp16", "--steps", "5", "--no-progress").exit_code == 0
    assert checkpoint.load(tmp_path / "fp16" / "checkpoints" / "last.pt")["step"] == 5
    result = invoke_gan(*base, "--precision", "bf16", "--out", tmp_path / "bf16")
    assert result.exit_code == 0, result.output
    assert "grad_scalers" not in checkpoint.load(tmp_path / "bf16" / "checkpoints" / "last.pt")


def test_precision_is_refused_unless_known(tmp_path):
    result = invoke_gan("run", "--arch", "mlp", "--objective", "gan", "--precision", "fp12", "--out", tmp_path / "r")
    assert result.exit_code == 2 and "fp12" in result.output
    config = tmp_path / "c.toml"
    config.write_text('arch = "mlp"\nobjective = "gan"\nprecision = "8"\n')
    result = invoke_gan("run", "--config", config, "--out", tmp_path / "r")
    assert result.exit_code == 2 and "--precision must be one of 32, bf16, 16" in result.output


def test_compile_keeps_checkpoints_plain_and_runs_a_double_backward_eager(tmp_path):
    base = ["run", "--arch", "mlp", "--dataset", "digits", "--image-size", "16", "--batch-size", "16", "--steps", "2",
            "--no-progress", "--compile", "--compile-backend", "aot_eager"]
    result = invoke_gan(*base, "--objective", "gan", "--out", tmp_path / "gan")
    assert result.exit_code == 0, result.output
    assert "runs eager" not in result.output
    keys = checkpoint.load(tmp_path / "gan" / "checkpoints" / "last.pt")["models"]
    assert keys and not any("_orig_mod" in k for k in keys)  # loads where nothing is compiled
    assert invoke_gan("sample", tmp_path / "gan", "-n", "4", "-o", tmp_path / "s.png").exit_code == 0
    result = invoke_gan(*base, "--objective", "wgan-gp", "--out", tmp_path / "gp")
    assert result.exit_code == 0, result.output
    assert result.output.count("--compile: the discriminator runs eager: objective 'wgan-gp'") == 1


@pytest.mark.parametrize("settings", [
    {"arch": "mlp", "objective": "gan"},
    {"arch": "mlp", "objective": "wgan-gp"},
    {"arch": "mlp", "objective": "rpgan"},
    {"arch": "mlp", "objective": "hinge", "params": {"objective": {"r1": 1.0, "penalty_every": 2}}},
    {"arch": "mlp", "objective": "gan", "augment": "diffaugment", "params": {"augment": {"target": 0.6}}},
    {"arch": "mlp", "objective": "gan", "precision": "bf16"},
    {"arch": "mlp", "objective": "wgan-gp", "precision": "16"},
    {"arch": "aae", "objective": "aae"},
], ids=lambda s: "-".join(str(v) for k, v in s.items() if k != "params"))
def test_no_host_sync_in_a_training_step(tmp_path, settings):
    """Syncs of the run's end (its last log line, checkpoint, grid) are the same for 4 steps as for 14: none
    comes per step, with every built-in duty on (the generator average included)."""
    counts = []
    for steps in (4, 14):
        (tmp_path / str(steps)).mkdir()
        run = trainer(tmp_path / str(steps), callbacks=None, **settings)
        run.train(max_steps=2)
        with count_host_syncs() as syncs:
            run.train(max_steps=2 + steps)
        counts.append(syncs)
    assert counts[1] == counts[0], counts[1] - counts[0]


def test_a_training_run_imports_neither_torchvision_nor_sklearn_nor_matplotlib(tmp_path):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "gan_registry", "run", "--arch", "mlp",
                             "--objective", "gan", "--dataset", "digits", "--steps", "1", "--no-progress",
                             "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=HANG_S)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")}
    assert not imported & {"torchvision", "sklearn", "matplotlib"}


@pytest.mark.parametrize("flags", [["--deterministic"], ["--precision", "bf16"], ["--precision", "16"]],
                         ids=["fp32-deterministic", "bf16", "fp16"])
def test_cpu_runs_resume_bit_exact_in_every_precision(tmp_path, flags, keep_kernel_settings):
    """What docs/speed.md claims for a CPU: a run stopped and resumed ends bit-identical to an unbroken one, loss
    scalers included (CUDA claims it for fp32 under --deterministic only)."""
    a, b = straight_and_resumed(tmp_path, ["--arch", "mlp", "--objective", "gan", "--dataset", "digits",
                                           "--image-size", "16", "--batch-size", "16", "--log-every", "2", *flags])
    assert a.get("grad_scalers") == b.get("grad_scalers")


def straight_and_resumed(tmp_path, run_args):
    """The checkpoints of 6 steps run straight and of 3 steps resumed to 6, after checking their weights agree."""
    base = ["run", *run_args, "--no-progress"]
    assert invoke_gan(*base, "--steps", "6", "--out", tmp_path / "straight").exit_code == 0
    assert invoke_gan(*base, "--steps", "3", "--out", tmp_path / "split").exit_code == 0
    assert invoke_gan("resume", tmp_path / "split", "--steps", "6", "--no-progress").exit_code == 0
    a, b = (checkpoint.load(tmp_path / d / "checkpoints" / "last.pt") for d in ("straight", "split"))
    for key in a["models"]:
        assert torch.equal(a["models"][key], b["models"][key]), key
    return a, b


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run on a GPU machine)")


@cuda
@pytest.mark.parametrize("flags", [["--precision", "bf16"], ["--precision", "16"],
                                   ["--precision", "bf16", "--compile"]], ids=["bf16", "fp16", "bf16-compile"])
def test_cuda_dcgan_trains_with_a_gradient_penalty(tmp_path, flags):
    result = invoke_gan("run", "--arch", "dcgan", "--objective", "wgan-gp", "--dataset", "digits", "--device", "cuda",
                        "--steps", "4", "--batch-size", "32", "--no-progress", "--out", tmp_path / "r", *flags)
    assert result.exit_code == 0, result.output
    state = checkpoint.load(tmp_path / "r" / "checkpoints" / "last.pt")
    assert all(torch.isfinite(t).all() for t in state["models"].values() if t.is_floating_point())


@cuda
def test_cuda_image_runs_are_channels_last_unless_asked_not(tmp_path):
    run = trainer(tmp_path, arch="dcgan", objective="gan", device="cuda")
    convs = [m for m in run.models["discriminator"].modules() if isinstance(m, torch.nn.Conv2d)]
    assert run.channels_last and convs and all(
        m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    assert not trainer(tmp_path, arch="dcgan", objective="gan", device="cuda", channels_last=False).channels_last


@cuda
def test_cuda_deterministic_run_resumes_bit_exact(tmp_path, keep_kernel_settings):
    straight_and_resumed(tmp_path, ["--arch", "dcgan", "--objective", "gan", "--dataset", "digits", "--device", "cuda",
                                    "--batch-size", "32", "--deterministic"])
