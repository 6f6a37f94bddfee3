"""The AAE plugin, trained for real on CPU through the `gan` command (about a minute in all).

One 400-step run on digits is shared by the quality tests; the step-0 baseline is the same
run's networks as seed 0 initialises them, before any training.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_registry import IncompatibleError, Run, load_plugins
from gan_registry.testing import HANG_S, build, preserved_rng


def load_networks(registry, run_dir: Path):
    run = Run.open(run_dir, registry=registry)
    return run, run.networks()

STEPS = 400  # ~8 s of one CPU core; enough for reconstruction and codes to settle (see README)
RESUME_STEPS = 20  # N: 2N = 40 steps = 80 batches, so the pause falls mid-epoch (25 batches each)
COMMON = ["--dataset", "digits", "--device", "cpu", "--seed", "0", "--no-progress", "--sample-every", "100000"]
# One thread per process: the tests start several processes at once, and torch's default of
# one thread per core oversubscribes small machines (it ran 10x slower on 2 busy cores).
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
ENV.pop("GAN_REGISTRY_STRICT_PLUGINS", None)


def _start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gan_registry", *args], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def gan(*commands: list[str], cwd: Path) -> list[subprocess.CompletedProcess]:
    """Run `gan` commands side by side (they are independent) and wait for all of them."""
    procs = [(c, _start(*c, cwd=cwd)) for c in commands]
    done = []
    for command, proc in procs:
        out, err = proc.communicate(timeout=HANG_S)
        done.append(subprocess.CompletedProcess(command, proc.returncode, out, err))
    return done


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"gan {' '.join(result.args)} failed:\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def registry():
    return load_plugins()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("aae")
    ok(gan(["run", "--arch", "aae", "--objective", "aae", "--steps", str(STEPS), "--log-every", str(STEPS),
            *COMMON, "--out", "run"], cwd=root)[0])
    return root / "run"


def _initial_networks(registry, run_dir: Path):
    """The run's networks at step 0: `gan run` seeds, then builds them before anything else."""
    built = build(registry, **Run.open(run_dir, registry=registry).settings)
    return built, torch.nn.ModuleDict(built.networks).eval()


def _reconstruction_l1(networks, x: torch.Tensor) -> float:
    with torch.no_grad():
        return (networks["generator"](networks["encoder"](x)) - x).abs().mean().item()


def _code_stats(networks, x: torch.Tensor):
    """Per-dimension mean and variance of the deterministic (eval-mode) codes, and the KL from
    the diagonal Gaussian with those moments to N(0, I): 0.5 * sum(var + mean^2 - 1 - log var)."""
    with torch.no_grad():
        codes = networks["encoder"](x)
    mean, var = codes.mean(0), codes.var(0)
    return mean, var, 0.5 * (var + mean**2 - 1 - var.log()).sum().item()


def test_reconstruction_improves_on_heldout_digits(run, registry):
    plan, before = _initial_networks(registry, run)
    _, after = load_networks(registry, run)
    heldout = plan.data.load_heldout()  # every tenth digit, never trained on
    l1_before, l1_after = _reconstruction_l1(before, heldout), _reconstruction_l1(after, heldout)
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    print(f"held-out L1: step 0 {l1_before:.4f}, step {STEPS} {l1_after:.4f}; images/s {log[-1]['images_per_s']}")
    # Untrained, the decoder outputs ~0 against a mostly -1 background (L1 ~0.7); trained, ~0.1.
    assert l1_after < 0.25 * l1_before
    assert l1_after < 0.2


def test_codes_approach_the_normal_prior(run, registry):
    plan, before = _initial_networks(registry, run)
    _, after = load_networks(registry, run)
    data = plan.data.load()  # the aggregated posterior is over the training data
    _, var_before, kl_before = _code_stats(before, data)
    mean, var, kl_after = _code_stats(after, data)
    print(f"codes vs N(0, I): KL step 0 {kl_before:.2f}, step {STEPS} {kl_after:.3f}; "
          f"|mean| <= {mean.abs().max():.3f}, var {var.min():.3f}..{var.max():.3f}")
    # At step 0 the mean codes barely vary (var ~0.002, KL ~28 nats). Sampling error over
    # 1,617 digits is ~0.03 on a mean and ~0.05 on a variance, so the bounds are set by how
    # far 400 steps at w=0.001 get (var 1.0-2.0 here; 1.0-1.7 at 600 steps): mean within 0.3,
    # variance within [0.4, 3], KL under 1.5 nats over 10 dimensions.
    # (With -p objective.adversarial_weight=0 the same run ends at var 5-14, KL ~27: the
    # latent discriminator is what does this, not the autoencoder by itself.)
    assert kl_before > 10 and var_before.max() < 0.05
    assert kl_after < 1.5
    assert mean.abs().max() < 0.3
    assert 0.4 < var.min() and var.max() < 3.0


def test_sample_and_reconstruct_commands(run):
    sample, recon = gan(["sample", str(run), "-n", "16", "-o", "s.png"],
                        ["reconstruct", str(run), "-n", "8", "-o", "r.png"], cwd=run)
    assert "wrote" in ok(sample).stdout and (run / "s.png").stat().st_size > 0
    assert "mean L1 reconstruction error" in ok(recon).stdout and (run / "r.png").stat().st_size > 0
    error = float(recon.stdout.rsplit("error", 1)[1].strip(" )\n"))
    assert error < 0.2


def test_resume_is_bit_identical(tmp_path):
    arch = ["--arch", "aae", "--objective", "aae", *COMMON]
    straight, first = gan(["run", *arch, "--steps", str(2 * RESUME_STEPS), "--out", "straight"],
                          ["run", *arch, "--steps", str(RESUME_STEPS), "--out", "split"], cwd=tmp_path)
    ok(straight), ok(first)
    ok(gan(["resume", "split", "--steps", str(2 * RESUME_STEPS), "--no-progress"], cwd=tmp_path)[0])
    a = torch.load(tmp_path / "straight/checkpoints/last.pt", weights_only=True)
    b = torch.load(tmp_path / "split/checkpoints/last.pt", weights_only=True)
    assert a["step"] == b["step"] == 2 * RESUME_STEPS
    models_a, models_b = a["models"], b["models"]
    # digits suggest a generator average, which is checkpointed (and resumed) beside the pieces
    assert {k.split(".")[0] for k in models_a} == {"generator", "discriminator", "encoder", "generator_ema"}
    assert models_a.keys() == models_b.keys()
    for key in models_a:  # weights and BatchNorm running statistics alike
        assert torch.equal(models_a[key], models_b[key]), key


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    # Other installed plugins may print "warning: ..." lines; the refusal itself is one line.
    lines = [line for line in result.stderr.splitlines() if line and not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    return lines[0]


def test_mismatched_combinations_are_refused(tmp_path):
    aae_gan, mlp_aae = gan(["run", "--arch", "aae", "--objective", "gan", "--steps", "1", "--out", "a"],
                           ["run", "--arch", "mlp", "--objective", "aae", "--steps", "1", "--out", "b"], cwd=tmp_path)
    assert "objective 'gan' does not train an encoder" in _one_error_line(aae_gan)
    assert "architecture 'mlp' has none" in _one_error_line(mlp_aae)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.fixture
def quiet_training():
    """In-process training that leaves this process's RNGs and thread count as they were."""
    with preserved_rng():
        torch.set_num_threads(1)
        yield


def test_latent_discriminator_and_mixture_prior_refuse(registry, tmp_path, quiet_training):
    # The core refuses aae+gan over the encoder before any network is built; without the
    # encoder in the way, the latent discriminator gives its own reason.
    with pytest.raises(IncompatibleError, match="judges latent codes.*use --objective aae"):
        build(registry, arch="mlp", discriminator="aae-latent", objective="gan")
    with pytest.raises(IncompatibleError, match="--latent-dim 2"):
        Run.new("aae", "aae", registry=registry, out=tmp_path / "m", steps=1, device="cpu",
                params={"objective": {"prior": "mixture"}})
    assert not (tmp_path / "m").exists()  # refused before the run directory is made


def test_mixture_prior_and_conv_body_train(registry, tmp_path, quiet_training):
    """The 2D mixture prior with the convolutional encoder/decoder: trains, then samples."""
    run = Run.new("aae", "aae", registry=registry, out=tmp_path / "m", steps=10, latent_dim=2, device="cpu",
                  sample_every=100000, log_every=10,
                  params={"objective": {"prior": "mixture"}, "arch": {"body": "conv"}}).train()
    log = json.loads((run.dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert log["step"] == 10 and all(torch.isfinite(torch.tensor(v)) for k, v in log.items() if "/" in k)
    assert run.sample(16, out=tmp_path / "s.png").shape == (16, 1, 32, 32)
    assert (tmp_path / "s.png").stat().st_size > 0


def test_mixture_prior_samples_lie_near_its_means():
    from gan_registry_aae import AAEParams, build_objective
    from gan_registry_aae._priors import mixture_means

    params = AAEParams(prior="mixture")
    prior = build_objective(params)
    z = prior.sample_latent(5000, 2, "cpu", torch.Generator().manual_seed(0))
    means = mixture_means(params.mixture_components, params.mixture_radius)
    distance, nearest = torch.cdist(z, means).min(dim=1)
    # In 2D, P(distance > 6 std) = exp(-18): no sample should be that far from its component.
    assert distance.max() < 6 * params.mixture_std
    assert abs(distance.pow(2).mean().item() / (2 * params.mixture_std**2) - 1) < 0.1  # E|noise|^2 = 2 std^2
    counts = torch.bincount(nearest, minlength=10)
    assert len(means) == 10 and counts.min() > 400 and counts.max() < 600  # equal weights: ~500 each
    again = prior.sample_latent(5000, 2, "cpu", torch.Generator().manual_seed(0))
    assert torch.equal(z, again)  # the generator argument makes sampling reproducible
    with pytest.raises(IncompatibleError, match="--latent-dim 2"):
        prior.sample_latent(4, 10, "cpu")


def test_normal_prior_honours_the_generator():
    from gan_registry_aae import AAEParams, build_objective

    prior = build_objective(AAEParams())
    a = prior.sample_latent(8, 10, "cpu", torch.Generator().manual_seed(3))
    b = prior.sample_latent(8, 10, "cpu", torch.Generator().manual_seed(3))
    assert a.shape == (8, 10) and torch.equal(a, b)


def test_encoder_is_stochastic_in_training_and_deterministic_in_eval(registry):
    built = build(registry, arch="aae", objective="aae")
    encoder = built.networks["encoder"]
    x = built.data.load_heldout()[:16]
    with torch.no_grad():
        encoder.train()
        assert not torch.equal(encoder(x), encoder(x))  # reparameterised: fresh noise each call
        encoder.eval()
        mean, _ = encoder.encode(x)
        assert torch.equal(encoder(x), encoder(x)) and torch.equal(encoder(x), mean)


# -- spectral norm on the latent discriminator (-p discriminator.spectral_norm=true) -------------

def _latent_discriminator(**params):
    from gan_registry import NetworkSpec, Needs
    from gan_registry_aae import LatentDiscriminatorParams, build_latent_discriminator

    spec = NetworkSpec((1, 32, 32), 10, (-1.0, 1.0), Needs(encoder=True, discriminator_input="latent"))
    return build_latent_discriminator(LatentDiscriminatorParams(widths=(64, 32), **params), spec)


def _linears(net):
    return [m for m in net.modules() if isinstance(m, torch.nn.Linear)]


def test_latent_discriminator_spectral_norm_is_a_parameter_off_by_default():
    from torch.nn.utils import parametrize

    off, on = _latent_discriminator(), _latent_discriminator(spectral_norm=True)
    assert not any(parametrize.is_parametrized(m) for m in off.modules())
    assert not any("parametrizations" in key for key in off.state_dict())
    assert len(_linears(on)) == 3 and all(
        parametrize.is_parametrized(m, "weight") and type(m.parametrizations.weight[0]).__name__ == "_SpectralNorm"
        for m in _linears(on))
    keys = on.state_dict().keys()  # the power-iteration vectors are buffers, so checkpoints carry them
    assert sum(k.endswith(("parametrizations.weight.0._u", "parametrizations.weight.0._v")) for k in keys) == 2 * 3
    assert on(torch.randn(4, 10)).shape == (4,)


def test_latent_discriminator_spectral_norm_bounds_each_largest_singular_value_by_one(quiet_training):
    torch.manual_seed(0)
    net = _latent_discriminator(spectral_norm=True).train()
    with torch.no_grad():
        for _ in range(100):  # one power iteration per training-mode forward
            net(torch.randn(2, 10))
        for m in _linears(net):
            assert torch.linalg.matrix_norm(m.weight, ord=2).item() == pytest.approx(1.0, abs=1e-2)


def test_spectral_norm_run_through_the_cli(tmp_path, quiet_training):
    from gan_registry.testing import invoke_gan

    result = invoke_gan("run", "--arch", "aae", "--objective", "aae", "--dataset", "digits", "--batch-size", "8",
                        "-p", "arch.hidden=64", "--device", "cpu", "-p", "discriminator.spectral_norm=true",
                        "--steps", "4", "--out", tmp_path / "run", "--no-progress")
    assert result.exit_code == 0, result.output
    models = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["models"]
    assert sum(k.startswith("discriminator.") and k.endswith(("._u", "._v")) for k in models) == 2 * 3
