"""Crafted and faulty files: each is made for real and handed to the `gan` command line, which refuses it in one
line (exit 2), or, for a fault that is not the user's (a full disk), says so in one line and exits 1.

The cases that matter most run in a real subprocess (`run_gan`); the rest run in-process, where a hang on a FIFO
would be a SIGALRM failure rather than a stuck suite."""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from gan_registry import checkpoint, generate
from gan_registry.cli import cli
from gan_registry.errors import UserError
from gan_registry.testing import no_hang, run_gan

TOY = ["--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "-p", "dataset.count=512", "--batch-size", "64",
       "-p", "arch.hidden=32"]
LAST = Path("checkpoints") / "last.pt"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def refused_in_process(*args, code: int = 2) -> str:
    """The one line `gan ARGS` answers with, run in-process, after checking its exit code."""
    with no_hang():
        result = invoke(*args)
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.output.startswith("Error: ") and result.output.strip().count("\n") == 0, result.output
    return result.output.strip()


def refused(*args, code: int = 2) -> str:
    """The one line the real `gan ARGS` answers with on stderr, after checking its exit code."""
    result = run_gan(*map(str, args))
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr.strip()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "run"
    result = invoke("run", *TOY, "--steps", "4", "--out", out, "--no-progress")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def model(run) -> Path:
    path = run.parent / "model.safetensors"
    assert invoke("export", run, "-o", path).exit_code == 0
    return path


def edited_run(run: Path, into: Path, edit) -> Path:
    """A copy of `run` whose last checkpoint `edit(state)` changed."""
    shutil.copytree(run, into)
    state = torch.load(into / LAST, weights_only=True)
    edit(state)
    torch.save(state, into / LAST)
    return into


def edited_export(model: Path, into: Path, metadata: dict[str, str] | None = None, weights=None) -> Path:
    """A copy of `model` with metadata entries replaced and, if given, `weights(tensor)` applied to each tensor."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(model), framework="pt") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}
        found = f.metadata()
    if weights is not None:
        tensors = {key: weights(value) for key, value in tensors.items()}
    save_file(tensors, str(into), metadata={**found, **(metadata or {})})
    return into


class _Gone:
    """A field taken out of the checkpoint."""

    def __repr__(self) -> str:  # the test's id, the same in every xdist worker
        return "missing"


_GONE = _Gone()


def _set(state, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        state = state[key]
    if value is _GONE:
        del state[last]
    else:
        state[last] = value


RESUME, SAMPLE, EVAL = (["resume", "{run}", "--steps", "8", "--no-progress"], ["sample", "{run}", "-o", "{tmp}/x.png"],
                        ["eval", "{run}", "--samples", "8"])
# (field, crafted value, the command given the run, what the one line says); each command reads the checkpoint
# through the same checks, so each case tries one
CHECKPOINT_FIELDS = [
    ("step", "4", SAMPLE, "its step is '4', not a whole number from 0 to 2**63-1"),
    ("step", 2**70, EVAL, "its step is a larger integer, not a whole number"),
    ("data.position", -1, RESUME, "its data.position is -1, not a whole number from 0 to 2**63-1"),
    ("data.epoch", 1.5, SAMPLE, "its data.epoch is 1.5, not a whole number"),
    ("data", [0, 4], EVAL, "its data is a list, not a table of epoch and position"),
    ("data.position", _GONE, RESUME, "its data.position is None, not a whole number"),
    ("models", {"generator.net.0.weight": "weights"}, SAMPLE, "its models is a dict, not a table of tensors"),
    ("optimizers", [], RESUME, "its optimizers is a list, not a table of optimizer states"),
]


@pytest.mark.parametrize("field, value, args, fragment", CHECKPOINT_FIELDS,
                         ids=[f"{f}={v!r}"[:40] for f, v, _, _ in CHECKPOINT_FIELDS])
def test_a_checkpoint_field_of_the_wrong_type_or_range_is_refused(run, tmp_path, field, value, args, fragment):
    edited = edited_run(run, tmp_path / "edited", lambda state: _set(state, field, value))
    line = refused_in_process(*(a.format(run=edited, tmp=tmp_path) for a in args))
    assert line == f"Error: checkpoint {edited / LAST}: {fragment}" + line.partition(fragment)[2]
    assert line.endswith("; the file is damaged or was edited")
    assert not (tmp_path / "x.png").exists()


def test_a_deeply_nested_checkpoint_field_is_refused(run, tmp_path):
    """torch.save cannot write a list 100,000 deep, so the pickle inside the zip is patched: its loader is not
    recursive, and nothing after it may be."""
    import zipfile

    edited = edited_run(run, tmp_path / "edited", lambda state: state.update(data="DEEP"))
    marker, depth = b"X\x04\x00\x00\x00DEEP", 100_000  # BINUNICODE 'DEEP'
    with zipfile.ZipFile(edited / LAST) as original:
        entries = [(info.filename, original.read(info)) for info in original.infolist()]
    with zipfile.ZipFile(edited / LAST, "w") as patched:
        for name, data in entries:
            patched.writestr(name, data.replace(marker, b"]" * depth + b"a" * (depth - 1)))  # EMPTY_LIST, APPEND
    assert refused_in_process("sample", edited, "-o", tmp_path / "x.png") == (
        f"Error: checkpoint {edited / LAST}: its data is a list, not a table of epoch and position; the file is "
        "damaged or was edited")


def test_a_string_step_in_a_real_subprocess(run, tmp_path):
    edited = edited_run(run, tmp_path / "edited", lambda state: state.update(step="4"))
    assert refused("resume", edited, "--steps", "8", "--no-progress") == (
        f"Error: checkpoint {edited / LAST}: its step is '4', not a whole number from 0 to 2**63-1; the file is "
        "damaged or was edited")


def test_a_data_position_beyond_its_epoch_is_refused(run, tmp_path):
    edited = edited_run(run, tmp_path / "edited", lambda state: state["data"].update(position=10**12))
    assert "data.position 1000000000000 is outside an epoch of" in refused_in_process("resume", edited, "--steps", "8",
                                                                                  "--no-progress")


# (metadata entry, crafted value, what the one line says)
EXPORT_FIELDS = [
    ("value_range", '["a", "b"]', "its metadata 'value_range' is '[\"a\", \"b\"]', not null or [low, high] of "
                                  "finite numbers, low < high"),
    ("value_range", "[0, Infinity]", "its metadata 'value_range' is '[0, Infinity]', not null or [low, high]"),
    ("value_range", "[1, -1]", "its metadata 'value_range' is '[1, -1]', not null or [low, high]"),
    ("needs", "[]", "its metadata 'needs' is '[]', not a table of the objective's needs"),
    ("needs", '{"encoder": "yes"}', "its metadata 'needs' is '{\"encoder\": \"yes\"}', not a table"),
    ("latent_dim", '"2"', "its metadata 'latent_dim' is '\"2\"', not a whole number from 1"),
    ("sample_shape", "[2, 0]", "its metadata 'sample_shape' is '[2, 0]', not a list of whole numbers from 1"),
    ("generator", '{"name": 3, "params": {}}', "its metadata 'generator' is '{\"name\": 3, \"params\": {}}', not a "
                                               "component record with a name and params"),
    ("classes", '["a", "b"]', "its metadata has no 'class_frequencies'"),
    ("prior", "uniform", "its metadata 'prior' is 'uniform', not objective or standard-normal"),
    ("value_range", "[0, 1", "its metadata 'value_range' is not JSON ('[0, 1')"),
    ("needs", "[" * 100_000 + "]" * 100_000, "is nested too deeply to be a gan-registry file"),
]


@pytest.mark.parametrize("name, value, fragment", EXPORT_FIELDS, ids=[f"{n}={v[:12]}" for n, v, _ in EXPORT_FIELDS])
def test_export_metadata_of_the_wrong_type_is_refused(model, tmp_path, name, value, fragment):
    crafted = edited_export(model, tmp_path / "crafted.safetensors", {name: value})
    line = refused_in_process("sample", crafted, "-o", tmp_path / "x.png")
    assert line.startswith(f"Error: {crafted}") and fragment in line
    assert not (tmp_path / "x.png").exists()


def test_crafted_export_metadata_in_a_real_subprocess(model, tmp_path):
    deep = edited_export(model, tmp_path / "deep.safetensors", {"value_range": "[" * 100_000 + "]" * 100_000})
    assert refused("sample", deep, "-o", tmp_path / "x.png") == (
        f"Error: {deep} is nested too deeply to be a gan-registry file")


def test_an_image_that_claims_billions_of_pixels_is_refused(tmp_path):
    import struct
    import zlib

    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("L", (1, 1)).save(folder / "bomb.png")
    data = bytearray((folder / "bomb.png").read_bytes())
    data[16:24] = struct.pack(">II", 40_000, 40_000)  # IHDR's width and height, then its CRC
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    (folder / "bomb.png").write_bytes(bytes(data))
    line = refused_in_process("eval", "--real", folder, "--fake", folder)
    assert line.startswith(f"Error: cannot read image {folder / 'bomb.png'}: Image size (1600000000 pixels) exceeds")


def test_counts_beyond_what_one_call_holds_are_refused_and_nothing_is_written(run, tmp_path):
    out = tmp_path / "new" / "x.npy"
    assert refused("sample", run, "-n", 10**9, "-o", out) == (
        "Error: -n 1000000000: at most 1000000 samples per call (they are held in memory together)")
    assert refused_in_process("eval", run, "--samples", 10**9) == (
        "Error: --samples 1000000000: at most 1000000 samples per call (they are held in memory together)")
    assert "-n 1000000000: at most 1000000 samples" in refused_in_process("reconstruct", run, "-n", 10**9, "-o",
                                                                         tmp_path / "new" / "r.png")
    assert "-n 1000001: at most 1000000 samples" in refused_in_process("sample", run, "--interpolate", "-n", 10**6 + 1,
                                                                      "-o", out)
    assert not (tmp_path / "new").exists() and not (run / "eval.json").exists()
    with pytest.raises(UserError, match=r"-n 100001: at most 100000 images per call"):
        generate.check_count("-n", 100_001, (3, 8, 8))
    generate.check_count("-n", 100_001, (2,))


def test_seeds_beyond_int64_are_refused(run, tmp_path):
    line = refused("sample", run, "--seed", 10**23, "-o", tmp_path / "x.png")
    assert "Invalid value for '--seed': 100000000000000000000000 is not in the range 0<=x<=9223372036854775807" in line
    assert "0<=x<=9223372036854775807" in refused_in_process("eval", run, "--seed", -1, "--samples", "8")
    assert "0<=x<=9223372036854775807" in refused_in_process("reconstruct", run, "--seed", 2**63, "-o",
                                                             tmp_path / "r.png")
    assert not (tmp_path / "x.png").exists()
    assert invoke("sample", run, "--seed", 2**63 - 1, "-n", "4", "-o", tmp_path / "x.pt").exit_code == 0


def _tmpfs(folder: Path, size: str) -> None:
    folder.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                 capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command here")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")


@pytest.fixture
def full_disk(tmp_path) -> Path:
    """A folder on a real file system with no space left: a small tmpfs, filled."""
    folder = tmp_path / "full"
    _tmpfs(folder, "64k")
    try:
        with open(folder / "filler", "wb") as f, contextlib.suppress(OSError):
            f.write(bytes(1 << 20))
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_exits_1_with_the_documented_wording(run, tmp_path, full_disk):
    out = full_disk / "x.npy"
    assert refused("sample", run, "-o", out, code=1) == f"Error: could not write {out}: no space left on device"
    model = full_disk / "model.safetensors"
    assert refused_in_process("export", run, "-o", model, code=1) == (
        f"Error: could not write {model}: no space left on device")
    picture = full_disk / "x.png"
    assert refused_in_process("sample", run, "-o", picture, code=1) == (
        f"Error: could not write {picture}: no space left on device")
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"], "no temporary file is left behind"


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A 40 KiB file system: room for a run's config and log, not for its first checkpoint."""
    folder = tmp_path / "small"
    _tmpfs(folder, "40k")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_disk_that_fills_during_a_run_is_a_fault_not_a_plugin_bug(small_disk, full_disk):
    """torch.save's zip writer reports a full disk as "unexpected pos": the write it failed on says why."""
    result = run_gan("run", "--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "--steps", "30",
                     "--batch-size", "1024", "--out", small_disk / "r", "--no-progress")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1] == (f"Error: could not write checkpoint {small_disk}/r/checkpoints/last.pt:"
                                              " no space left on device; the previous checkpoint is kept")
    result = run_gan("run", "--arch", "mlp", "--objective", "gan", "--dataset", "gaussians", "--steps", "4",
                     "--out", full_disk / "r", "--no-progress")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "no space left on device" in result.stderr.splitlines()[-1]
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


def test_nan_weights_warn_on_sample_and_are_refused_by_eval(run, model, tmp_path):
    nan = edited_export(model, tmp_path / "nan.safetensors", weights=lambda w: torch.full_like(w, float("nan")))
    result = run_gan("sample", str(nan), "-n", "10", "-o", str(tmp_path / "x.npy"))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr == ("warning: 10 of 10 generated samples are not finite (the weights hold NaN/inf?); "
                             f"written as they are (from {nan})\n")

    def poison(state):
        state["models"] = {k: v.fill_(float("inf")) if k.startswith("generator.") else v
                           for k, v in state["models"].items()}

    broken = edited_run(run, tmp_path / "broken", poison)
    assert refused_in_process("eval", broken, "--samples", "8") == (
        f"Error: {broken / LAST}: 8 of 8 generated samples are not finite (the weights hold NaN/inf?); no metric "
        "is measured on them")
    assert not (broken / "eval.json").exists()
    sampled = invoke("sample", broken, "-n", "5", "-o", tmp_path / "b.png")
    assert sampled.exit_code == 0
    assert "warning: 5 of 5 generated samples are not finite (the weights hold NaN/inf?)" in sampled.output


def test_written_files_honour_the_umask(run, tmp_path):
    previous = os.umask(0o022)
    try:
        result = run_gan("export", str(run), "-o", str(tmp_path / "m.safetensors"))
        assert result.returncode == 0, result.stderr
        os.umask(0o027)
        checkpoint.save_atomic({"step": 1}, tmp_path / "c.pt")
        assert invoke("sample", run, "-n", "4", "-o", tmp_path / "s.npy").exit_code == 0
    finally:
        os.umask(previous)
    mode = {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("m.safetensors", "c.pt", "s.npy")}
    assert mode == {"m.safetensors": 0o644, "c.pt": 0o640, "s.npy": 0o640}


def test_a_fifo_is_refused_without_waiting_for_a_writer(run, model, tmp_path):
    fifo_run = tmp_path / "fifo-run"
    shutil.copytree(run, fifo_run)
    (fifo_run / LAST).unlink()
    os.mkfifo(fifo_run / LAST)
    assert refused("resume", fifo_run, "--steps", "8", "--no-progress") == (
        f"Error: checkpoint {fifo_run / LAST} is not a regular file")
    for args in (["sample", fifo_run, "-o", tmp_path / "x.png"], ["eval", fifo_run, "--samples", "8"]):
        assert refused_in_process(*args) == f"Error: checkpoint {fifo_run / LAST} is not a regular file"
    fifo_model = tmp_path / "fifo.safetensors"
    os.mkfifo(fifo_model)
    assert refused_in_process("sample", fifo_model, "-o", tmp_path / "x.png") == (
        f"Error: exported generator {fifo_model} is not a regular file")
    assert not (tmp_path / "x.png").exists()


# The rows of docs/troubleshooting.md's refusal table for the cases above: each shows the message the tests above
# assert (paths shortened)
DOCUMENTED = [
    ("a checkpoint step that is not a number", CHECKPOINT_FIELDS[0][3]),
    ("a checkpoint data position past its epoch", "data.position 1000000000000 is outside an epoch of"),
    ("a checkpoint or export that is a FIFO", "is not a regular file"),
    ("an export value range that is not finite", EXPORT_FIELDS[1][2]),
    ("export needs of the wrong type", EXPORT_FIELDS[3][2]),
    ("export metadata nested 100,000 deep", "is nested too deeply to be a gan-registry file"),
    ("a billion samples", "-n 1000000000: at most 1000000 samples per call (they are held in memory together)"),
    ("a billion evaluation samples", "--samples 1000000000: at most 1000000 samples per call"),
    ("a sampling seed past 2**63", "is not in the range 0<=x<=9223372036854775807"),
    ("metrics of samples that are not finite", "generated samples are not finite (the weights hold NaN/inf?); no metric"),
]


def test_the_troubleshooting_page_shows_these_refusals():
    page = (Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md").read_text()
    rows = {line.split(" | ")[0][2:]: line for line in page.splitlines() if line.startswith("| ")}
    for description, fragment in DOCUMENTED:
        assert fragment in rows[description].split(" | ", 2)[2], description
