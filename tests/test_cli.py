"""The CLI through click's runner and real subprocesses: listings, descriptions, user errors."""
import json

import pytest
import torch
from click.testing import CliRunner

from gan_registry.cli import cli
from gan_registry.testing import HANG_S, run_gan


@pytest.fixture
def invoke():
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args), catch_exceptions=False)


def test_list_and_json(invoke):
    result = invoke("list", "datasets", "--json")
    assert result.exit_code == 0
    names = {row["name"] for row in json.loads(result.output)}
    assert {"digits", "gaussians"} <= names
    text = invoke("list").output
    assert "architectures:" in text and "objectives:" in text


def test_describe_shows_parameters_and_origin(invoke):
    result = invoke("describe", "gaussians")
    assert result.exit_code == 0
    assert "from: gaussians (gan-registry-toy-datasets" in result.output
    assert "layout ({ring|grid}, default 'ring')" in result.output
    rows = json.loads(invoke("describe", "mlp", "--json").output)
    assert {r["kind"] for r in rows} == {"architecture", "generator", "discriminator"}


def test_gan_plugins_lists_builtin_distributions_in_real_subprocess():
    import subprocess

    result = subprocess.run(["gan", "plugins"], capture_output=True, text=True, timeout=HANG_S)
    assert result.returncode == 0, result.stderr
    for dist in ("gan-registry-mlp", "gan-registry-objectives", "gan-registry-toy-datasets"):
        assert dist in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--arch", "mpl", "--objective", "gan"], "unknown architecture 'mpl'; did you mean 'mlp'?"),
        (["run", "--arch", "mlp", "--objective", "gna"], "unknown objective 'gna'; did you mean 'gan'"),
        (["run", "--arch", "mlp", "--objective", "gan", "-p", "arch.hiden=3"],
         "architecture 'mlp' has no parameter 'hiden' (valid: acgan_weight, conditioning, depth, hidden, norm, spectral_norm)"),
        (["run", "--arch", "mlp", "--objective", "gan", "-p", "objective.label_smoothing=lots"],
         "objective 'gan' parameter 'label_smoothing'='lots'"),
        (["run", "--arch", "mlp", "--objective", "gan", "-p", "objective.label_smoothing=1.5"],
         "label_smoothing must be in [0, 1)"),
        (["run", "--arch", "mlp", "--objective", "gan", "-p", "nonsense"], "expected KIND.PARAM=VALUE"),
        (["run", "--arch", "mlp", "--objective", "gan", "-p", "model.x=1"], "unknown parameter group 'model'"),
        (["run", "--arch", "mlp", "--objective", "gan", "--epochs", "1", "--steps", "5"], "not both"),
        (["run", "--arch", "mlp", "--objective", "gan", "--batch-size", "5000", "--steps", "1"],
         "fewer than one batch of 5000"),
        (["run", "--objective", "gan"], "--arch is required"),
        (["run", "--arch", "mlp", "--objective", "gan", "--config", "/no/such.toml"], "no such file"),
        (["resume", "/no/such/run"], "no run directory at /no/such/run"),
        (["sample", "/no/such/run", "-o", "x.png"], "no run directory at /no/such/run"),
        (["describe", "gausians"], "no component named 'gausians'; did you mean gaussians"),
    ],
)
def test_user_errors_are_one_line_exit_2(invoke, tmp_path, args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.strip().count("\n") == 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_user_error_in_real_subprocess_has_no_traceback(tmp_path):
    result = run_gan("run", "--arch", "mlp", "--objective", "gan", "-p", "dataset.layout=ring", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "Error: dataset 'digits' has no parameter 'layout' (valid: size, holdout)"
    assert not (tmp_path / "runs").exists(), "nothing is written before the combination is checked"


def test_config_file_with_flags_overriding(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        'arch = "mlp"\nobjective = "gan"\ndataset = "gaussians"\nsteps = 4\nbatch-size = 16\n'
        "[params.dataset]\ncount = 256\nlayout = \"grid\"\n[params.arch]\nhidden = 32\n"
    )
    result = run_gan("run", "--config", config, "--steps", "3", "--out", tmp_path / "run", "--no-progress")
    assert result.returncode == 0, result.stderr
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["settings"]["steps"] == 3 and saved["settings"]["batch_size"] == 16
    assert saved["components"]["dataset"]["params"]["layout"] == "grid"
    assert saved["components"]["generator"]["params"]["hidden"] == 32
    assert saved["components"]["discriminator"]["params"]["hidden"] == 32


def test_config_file_unknown_key(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('arch = "mlp"\nobjective = "gan"\nepoch = 3\n')
    result = CliRunner().invoke(cli, ["run", "--config", str(config)])
    assert result.exit_code == 2 and "unknown key 'epoch'" in result.output


def test_help_does_not_import_torch_or_plugins():
    import subprocess
    import sys

    code = "import sys; from gan_registry.cli import cli\ntry: cli(['--help'])\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_S)
    assert result.stdout.strip().endswith("False")


def test_dataset_suggestions_fill_only_what_the_user_left_unset(tmp_path):
    """gaussians suggests toy settings; the user's flags win over them."""
    described = run_gan("describe", "gaussians")
    assert "the architecture's): latent_dim=2, batch_size=256" in described.stdout
    base = ["run", "--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "-p", "dataset.count=512",
            "--no-progress"]
    plain = run_gan(*base, "--steps", "2", "--out", tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr
    assert "defaults: latent_dim=2, batch_size=256, lr_scale=10, lr_decay_start=0.3 (dataset 'gaussians')" in plain.stdout
    settings = json.loads((tmp_path / "plain" / "config.json").read_text())["settings"]
    assert (settings["latent_dim"], settings["batch_size"], settings["lr_scale"]) == (2, 256, 10)
    assert settings["steps"] == 2  # the user's length, not the suggested one

    mine = run_gan(*base, "--epochs", "1", "--batch-size", "32", "--latent-dim", "4", "--lr-scale", "1",
                   "--out", tmp_path / "mine")
    assert mine.returncode == 0, mine.stderr
    settings = json.loads((tmp_path / "mine" / "config.json").read_text())["settings"]
    assert (settings["latent_dim"], settings["batch_size"], settings["lr_scale"]) == (4, 32, 1)
    assert settings["steps"] is None and settings["epochs"] == 1
    optimizers = torch.load(tmp_path / "mine" / "checkpoints" / "last.pt", weights_only=True)["optimizers"]
    assert optimizers["generator"]["param_groups"][0]["lr"] < 2e-4  # gan's own rate, decayed

    digits = run_gan("run", "--arch", "mlp", "--objective", "gan", "--steps", "1", "--image-size", "8",
                     "--out", tmp_path / "digits", "--no-progress")
    assert digits.returncode == 0 and "ema_half_life=10000 (dataset 'digits')" in digits.stdout
    settings = json.loads((tmp_path / "digits" / "config.json").read_text())["settings"]
    assert (settings["batch_size"], settings["lr_scale"], settings["epochs"]) == (64, None, None)
    assert settings["ema_half_life"] == 10000 and settings["ema"] is None
    off = run_gan("run", "--arch", "mlp", "--objective", "gan", "--steps", "1", "--image-size", "8", "--ema", "0",
                  "--out", tmp_path / "off", "--no-progress")
    assert off.returncode == 0 and "suggests" not in off.stdout  # --ema 0: no average, whatever digits suggests
    settings = json.loads((tmp_path / "off" / "config.json").read_text())["settings"]
    assert settings["ema_half_life"] is None
    for run, averaged in (("digits", True), ("off", False)):
        models = torch.load(tmp_path / run / "checkpoints" / "last.pt", weights_only=True)["models"]
        assert any(key.startswith("generator_ema.") for key in models) is averaged
