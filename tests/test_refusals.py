"""What a user gets wrong is refused with exit 2 and one line, and nothing on disk changes; what is tolerated is
tolerated. Both tables are the ones docs/troubleshooting.md shows (a test below keeps them in step)."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from gan_registry.cli import cli
from gan_registry.testing import run_gan

ROOT = Path(__file__).resolve().parents[1]
MLP = ["--arch", "mlp", "--objective", "gan"]
FAST = [*MLP, "--image-size", "8", "--batch-size", "32"]
CIFAR = ["--dataset", "cifar10", "--steps", "1", "--batch-size", "4", "-p", "dataset.download=false", "--data-dir"]

# (description shown in the docs, arguments with {placeholders}, a fragment of the one-line message)
REFUSED = [
    ("misspelled architecture", ["run", "--arch", "mpl", "--objective", "gan"],
     "unknown architecture 'mpl'; did you mean 'mlp'?"),
    ("misspelled objective", ["run", "--arch", "mlp", "--objective", "wgan-pg"], "did you mean 'wgan-gp'"),
    ("misspelled dataset", ["run", *MLP, "--dataset", "digts"], "unknown dataset 'digts'; did you mean 'digits'?"),
    ("misspelled generator override", ["run", *MLP, "--generator", "dcgn"], "unknown generator 'dcgn'"),
    ("misspelled component in describe", ["describe", "gausians"], "did you mean gaussians"),
    ("unknown kind in list", ["list", "archs"], "Invalid value for '[KIND]'"),
    ("unknown flag", ["run", *MLP, "--step", "3"], "No such option '--step'"),
    ("unknown parameter", ["run", *MLP, "-p", "arch.hiden=3"], "has no parameter 'hiden' (valid: acgan_weight, conditioning, depth, hidden"),
    ("unknown parameter group", ["run", *MLP, "-p", "model.x=1"], "unknown parameter group 'model'"),
    ("parameter without KIND.NAME=VALUE", ["run", *MLP, "-p", "hidden"], "expected KIND.PARAM=VALUE"),
    ("parameter of the wrong type", ["run", *MLP, "-p", "objective.label_smoothing=lots"], "'lots': expected a number"),
    ("parameter out of range", ["run", *MLP, "-p", "objective.label_smoothing=1.5"], "must be in [0, 1)"),
    ("parameter not among its choices", ["run", *MLP, "-p", "arch.norm=group"], "expected one of"),
    ("flag value of the wrong type", ["run", *MLP, "--steps", "many"], "'many' is not a valid integer"),
    ("zero epochs", ["run", *MLP, "--epochs", "0"], "--epochs must be at least 1, got 0"),
    ("negative steps", ["run", *MLP, "--steps", "-5"], "--steps must be at least 1, got -5"),
    ("batch size below 2", ["run", *MLP, "--batch-size", "1"], "--batch-size must be at least 2"),
    ("seed that is not an integer", ["run", "--config", "{tmp}/seed.toml"], "--seed must be an integer"),
    ("config path that is a folder", ["run", *MLP, "--config", "{tmp}/empty"], "--config"),
    ("--out inside a file", ["run", *FAST, "--steps", "1", "--out", "{tmp}/notes.txt/run"], "is a file, so no folder"),
    ("zero checkpoints kept", ["run", *MLP, "--keep", "0"], "--keep must be at least 1"),
    ("negative learning-rate scale", ["run", *MLP, "--lr-scale", "-1"], "--lr-scale must be positive"),
    ("decay start outside 0..1", ["run", *MLP, "--lr-decay-start", "2"], "a fraction of the run, from 0 to 1"),
    ("both --epochs and --steps", ["run", *MLP, "--epochs", "1", "--steps", "5"], "not both"),
    ("batch larger than the dataset", ["run", *MLP, "--batch-size", "5000", "--steps", "1"],
     "fewer than one batch of 5000"),
    ("missing --arch", ["run", "--objective", "gan"], "--arch is required"),
    ("config file that does not exist", ["run", *MLP, "--config", "{tmp}/none.toml"], "no such file"),
    ("config file with an unknown key", ["run", "--config", "{tmp}/typo.toml"], "unknown key 'epoch'"),
    ("an existing file as --out", ["run", *FAST, "--steps", "1", "--out", "{tmp}/notes.txt"], "is a file"),
    ("a folder with other files as --out", ["run", *FAST, "--steps", "1", "--out", "{tmp}/stuff"], "is not empty"),
    ("a finished run as --out", ["run", *FAST, "--steps", "1", "--out", "{run}"], "already holds a run"),
    ("encoder architecture with a plain objective", ["run", "--arch", "aae", "--objective", "gan"],
     "does not train an encoder; use --objective aae"),
    ("objective that needs an encoder", ["run", "--arch", "mlp", "--objective", "aae"],
     "architecture 'mlp' has none (architectures with an encoder: aae)"),
    ("image network on 2D points", ["run", "--arch", "dcgan", "--objective", "gan", "--dataset", "gaussians"],
     "sample shape (2,)"),
    ("BatchNorm critic with a gradient penalty", ["run", "--arch", "dcgan", "--objective", "wgan-gp",
                                                  "-p", "discriminator.norm=batch"], "use a per-sample norm"),
    ("image folder that does not exist", ["run", *FAST, "--dataset", "folder", "--data-dir", "{tmp}/nowhere"],
     "does not exist"),
    ("empty image folder", ["run", *FAST, "--dataset", "folder", "--data-dir", "{tmp}/no-images"], "no images in"),
    ("image folder with no readable image", ["run", *FAST, "--dataset", "folder", "--data-dir", "{tmp}/broken-images"],
     "no readable images in"),
    ("misspelled logger", ["run", *MLP, "--log", "tensorbord"],
     "unknown logger 'tensorbord'; did you mean 'tensorboard'? (loggers: csv, jsonl-log, tensorboard)"),
    ("a callback that is not a logger as --log", ["run", *MLP, "--log", "progress"],
     "--log progress: callback 'progress' is not a logger (loggers: csv, jsonl-log, tensorboard)"),
    ("plot of a folder that is not a run", ["plot", "{tmp}/empty", "-o", "{tmp}/c.png"],
     "is not a run directory (no config.json)"),
    ("plot to an unknown file type", ["plot", "{run}", "-o", "{tmp}/c.txt"], "use a .png, .svg or .pdf file name"),
    ("plot of a value no run logged", ["plot", "{run}", "-o", "{tmp}/c.png", "--key", "eval/fdi"],
     "--key eval/fdi: no run logged it (logged: discriminator/score_fake, discriminator/score_real, epoch"),
    ("runs of a folder that does not exist", ["runs", "{tmp}/nowhere"], "no folder at"),
    ("resume of a missing folder", ["resume", "{tmp}/nowhere"], "no run directory at"),
    ("resume of an empty folder", ["resume", "{tmp}/empty"], "is not a run directory (no config.json)"),
    ("resume of a foreign folder", ["resume", "{tmp}/foreign"], "is not the config of a gan run"),
    ("resume of a finished run without a new total", ["resume", "{run}"], "already at step 3"),
    ("truncated checkpoint", ["resume", "{truncated}", "--steps", "9"], "is corrupt or truncated"),
    ("random-byte checkpoint", ["sample", "{random}", "-o", "{tmp}/x.png"], "is corrupt or truncated"),
    ("crafted (pickled code) checkpoint", ["eval", "{crafted}"], "loading it could run code; nothing in it was run"),
    ("sample to an unknown file type", ["sample", "{run}", "-o", "{tmp}/x.gif"], "use a .png, .pt or .npy file name"),
    ("zero samples", ["sample", "{run}", "-n", "0", "-o", "{tmp}/x.png"], "-n must be at least 1"),
    ("export over an existing file", ["export", "{run}", "-o", "{tmp}/model.safetensors"], "pass --force"),
    ("export to another format", ["export", "{run}", "-o", "{tmp}/model.pt"], "an export is a .safetensors file"),
    ("sample from a damaged export", ["sample", "{tmp}/garbage.safetensors", "-o", "{tmp}/x.png"],
     "is not a readable safetensors file"),
    ("evaluation with zero samples", ["eval", "{run}", "--samples", "0"], "--samples must be at least 1"),
    ("Inception-v3 without its weights file", ["eval", "{run}", "--metric", "fid", "--samples", "4", "--extractor",
                                               "inception-v3", "-p", "extractor.weights={tmp}/nowhere.pth"],
     "extractor 'inception-v3' needs its weights file weights-inception-2015-12-05-6726825d.pth"),
    ("misspelled feature extractor", ["eval", "{run}", "--metric", "fid", "--extractor", "inceptoin"],
     "unknown extractor 'inceptoin'; did you mean 'inception-v3'?"),
    ("--real without --fake", ["eval", "--real", "digits"],
     "give a RUN_DIR to evaluate, or both --real SRC and --fake SRC"),
    ("evaluation settings without --eval-every", ["run", *FAST, "--eval-metric", "kid"],
     "--eval-metric and --extractor choose what --eval-every measures; give --eval-every STEPS"),
    ("negative generator average decay", ["run", *MLP, "--ema", "-1"], "--ema is a decay per step between 0 and 1"),
    ("both --ema and --ema-half-life", ["run", *MLP, "--ema", "0.99", "--ema-half-life", "5000"],
     "give --ema or --ema-half-life, not both"),
    ("--ema-start without an average", ["run", *MLP, "--dataset", "gaussians", "--ema-start", "100"],
     "--ema-start delays the generator average, and this run has none"),
    ("augmenting 2D points", ["run", *MLP, "--dataset", "gaussians", "--augment", "diffaugment"],
     "augment 'diffaugment' does not fit this run"),
    ("augment parameters without --augment", ["run", *MLP, "-p", "augment.target=0.6"],
     "-p augment.*: choose the augmentation too"),
    ("unknown precision", ["run", *MLP, "--precision", "fp12"], "Invalid value for '--precision': 'fp12' is not one of"),
    ("unknown precision in a config file", ["run", "--config", "{tmp}/precision.toml"],
     "--precision must be one of 32, bf16, 16, got '8'"),
    ("negative R1 weight", ["run", *MLP, "-p", "objective.r1=-1"], "r1 must be >= 0"),
    ("BatchNorm discriminator with R1", ["run", "--arch", "dcgan", "--objective", "gan", "-p", "objective.r1=1",
                                         "-p", "discriminator.norm=batch"], "use a per-sample norm"),
    ("reconstruct a run without an encoder", ["reconstruct", "{run}", "-o", "{tmp}/r.png"], "has no encoder"),
    ("--conditional on data without labels", ["run", *MLP, "--dataset", "gaussians", "--conditional"],
     "--conditional conditions on class labels, and dataset 'gaussians' has none"),
    ("--conditional with a piece that cannot condition", ["run", "--arch", "lenet", "--objective", "gan",
                                                          "--conditional"],
     "--conditional: generator 'convt' cannot condition on labels"),
    ("--class of an unconditional run", ["sample", "{run}", "--class", "3", "-o", "{tmp}/x.png"],
     "is not conditional (train with `gan run --conditional` to draw a class)"),
    ("a number where a settings file names a piece", ["run", "--config", "{tmp}/number.toml"],
     "arch must be a name (a string), got 5"),
    ("a settings file that is not UTF-8", ["run", "--config", "{tmp}/latin1.toml"],
     "not UTF-8 text (byte 0xe9 at offset 10); TOML files are UTF-8"),
    ("a settings file nested 100,000 deep", ["run", "--config", "{tmp}/deep.toml"], "nested too deeply to be settings"),
    ("a settings file that is a FIFO", ["run", "--config", "{tmp}/pipe.toml"], "is a FIFO, not a regular file"),
    ("callbacks as one string in a settings file", ["run", "--config", "{tmp}/callbacks.toml"],
     "callbacks must be a list of callback names, got 'progress'"),
    ("a run whose config.json is a FIFO", ["sample", "{pipe_config}", "-o", "{tmp}/x.png"],
     "is a FIFO, not a regular file"),
    ("a run whose config.json is nested 100,000 deep", ["sample", "{deep_config}", "-o", "{tmp}/x.png"],
     "is nested too deeply to be the config of a gan run"),
    ("discriminator steps past any schedule", ["run", *MLP, "-p", "objective.discriminator_steps=100000000"],
     "discriminator_steps must be at most 1000 (steps per generator step), got 100000000"),
    ("a network width past memory", ["run", *MLP, "-p", "arch.hidden=100000000000000000000"],
     "generator 'mlp' asked for more than this machine can hold while building the generator"
     " (hidden=100000000000000000000)"),
    ("a latent dimension past memory", ["run", *MLP, "--latent-dim", "10000000000"],
     "asked for more than this machine can hold while building the generator (--latent-dim 10000000000)"),
    ("a width past torch's integers", ["run", *MLP, "-p", "arch.hidden=9223372036854775807"],
     "RuntimeError: Storage size calculation overflowed"),
    ("a seed past 2**63", ["run", *MLP, "--seed", "100000000000000000000000"], "--seed must be below 2**63"),
    ("a table where a parameter's value belongs", ["run", "--config", "{tmp}/table.toml"],
     "parameter 'hidden'={'x': {'y': 1}}: expected an integer, or none"),
    ("an infinite learning rate", ["run", *MLP, "-p", "objective.lr_generator=inf"],
     "parameter 'lr_generator'='inf': expected a finite number"),
    ("an infinite learning-rate scale", ["run", *MLP, "--lr-scale", "inf"], "--lr-scale must be a finite number"),
    ("steps past 2**63", ["run", *MLP, "--steps", "10000000000000000000"], "--steps must be below 2**63"),
    ("a network depth past any GAN", ["run", *MLP, "-p", "arch.depth=100000"], "depth must be at most 100, got 100000"),
    ("a billion Gaussian modes", ["run", *MLP, "--dataset", "gaussians", "-p", "dataset.modes=1000000000"],
     "modes must be at most 10,000 and count at most 10,000,000"),
    ("an --out name too long for the file system", ["run", *FAST, "--steps", "1", "--out", "{tmp}/" + "a" * 300],
     "File name too long"),
    ("a resumed run whose samples/ is a link", ["resume", "{linked_samples}", "--steps", "9"],
     "samples is a symbolic link: a run writes only into its own files and folders, so it is not resumed"),
    ("a resumed run whose log is a FIFO", ["resume", "{pipe_log}", "--steps", "9"],
     "metrics.jsonl is not a regular file: a run writes only into its own files and folders"),
    ("a file that is no archive in place of CIFAR-10's", ["run", *MLP, *CIFAR, "{tmp}/not-tar"],
     "could not unpack"),
    ("an archive member that escapes the data folder", ["run", *MLP, *CIFAR, "{tmp}/escaping-tar"],
     "cifar-10-python.tar.gz: member '../../ESCAPED' would be written outside"),
    ("an archive member that is a link", ["run", *MLP, *CIFAR, "{tmp}/linking-tar"],
     "member 'cifar-10-batches-py' is a symbolic link to"),
    ("a .gz that inflates past its bound", ["run", *MLP, "--dataset", "mnist", "-p", "dataset.download=false",
                                            "--data-dir", "{tmp}/gzip-bomb"],
     "it inflates past 64 MiB (the largest official file is 47 MB); nothing was written"),
    ("MNIST files whose counts disagree", ["run", *MLP, "--dataset", "mnist", "-p", "dataset.download=false",
                                           "--data-dir", "{tmp}/mnist-counts"], "holds 20 labels but"),
    ("a truncated CIFAR-10 batch", ["run", *MLP, *CIFAR, "{tmp}/cifar-cut", "-p", "dataset.verify=false"],
     "data_batch_1: it is truncated or corrupt"),
    ("a CIFAR-10 label outside its classes", ["run", *MLP, *CIFAR, "{tmp}/cifar-99", "-p", "dataset.verify=false",
                                              "--conditional"], "data_batch_1: label 99 of image 0 is outside 0..9"),
]

# (description shown in the docs, what is in the image folder) -> the run trains and warns once
TOLERATED = [
    ("a truncated PNG among good images", {"bad.png": "truncated"}),
    ("a text file named .png", {"notes.png": "text"}),
    ("an empty .jpg", {"empty.jpg": "empty"}),
    ("files that are not images (.txt, .csv) and hidden files", {"README.txt": "text", ".DS_Store": "text"}),
]


def _png(path: Path, shade: int) -> None:
    Image.new("RGB", (12, 10), (shade, 255 - shade, 90)).save(path)


def _images(folder: Path, n: int = 40) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        _png(folder / f"{i:03d}.png", i * 6)


def _damage(path: Path, how: str) -> None:
    if how == "truncated":
        _png(path, 7)
        path.write_bytes(path.read_bytes()[:30])
    elif how == "text":
        path.write_text("not an image\n")
    else:
        path.write_bytes(b"")


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> None:
    path.parent.mkdir(parents=True)
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def _member(name: str, data: bytes = b"x\n") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _idx(folder: Path, split: str, images: int, labels: int) -> None:
    (folder / f"{split}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, images, 28, 28) + bytes(784 * images))
    (folder / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, labels) + bytes(labels))


def _cifar(folder: Path, first_label: int = 0) -> None:
    import numpy as np

    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": np.zeros((4, 3072), np.uint8), "labels": [first_label, 1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}, protocol=2))


def _crafted_data(tmp: Path) -> None:
    """The data folders of the dataset rows: archives that reach out, a gzip bomb, files that disagree."""
    _tar(tmp / "escaping-tar" / "cifar-10-python.tar.gz", [_member("../../ESCAPED")])
    link = tarfile.TarInfo("cifar-10-batches-py")
    link.type, link.linkname = tarfile.SYMTYPE, str(tmp)
    _tar(tmp / "linking-tar" / "cifar-10-python.tar.gz", [(link, None), _member("cifar-10-batches-py/ESCAPED")])
    raw = tmp / "gzip-bomb" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    with gzip.open(raw / "train-images-idx3-ubyte.gz", "wb", compresslevel=1) as f:
        for _ in range(65):
            f.write(bytes(1 << 20))
    raw = tmp / "mnist-counts" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _idx(raw, "train", images=40, labels=20)
    _idx(raw, "t10k", images=40, labels=40)
    _cifar(tmp / "cifar-99" / "cifar-10-batches-py", first_label=99)
    _cifar(tmp / "cifar-cut" / "cifar-10-batches-py")
    batch = tmp / "cifar-cut" / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(batch.read_bytes()[:100])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:
    """A finished run, damaged copies of it, and the files and folders the table refers to."""
    tmp = tmp_path_factory.mktemp("world")
    run = tmp / "run"
    result = CliRunner().invoke(cli, ["run", *FAST, "--steps", "3", "--out", str(run), "--no-progress"])
    assert result.exit_code == 0, result.output
    places = {"tmp": tmp, "run": run}
    for name in ("truncated", "random", "crafted"):
        shutil.copytree(run, tmp / name)
        places[name] = tmp / name
    last = "checkpoints/last.pt"
    (tmp / "truncated" / last).write_bytes((run / last).read_bytes()[:5000])
    (tmp / "random" / last).write_bytes(bytes(range(256)) * 40)
    (tmp / "crafted" / last).write_bytes(b"\x80\x02cposix\nsystem\nq\x00X\x05\x00\x00\x00touchq\x01\x85q\x02Rq\x03.")
    (tmp / "notes.txt").write_text("my notes\n")
    (tmp / "stuff").mkdir()
    (tmp / "stuff" / "config.json").write_text("{}\n")
    (tmp / "empty").mkdir()
    (tmp / "foreign").mkdir()
    (tmp / "foreign" / "config.json").write_text(json.dumps({"name": "another tool's config"}))
    (tmp / "no-images").mkdir()
    (tmp / "no-images" / "list.txt").write_text("nothing\n")
    (tmp / "broken-images").mkdir()
    for name in ("a.png", "b.jpg"):
        _damage(tmp / "broken-images" / name, "text")
    (tmp / "typo.toml").write_text('arch = "mlp"\nobjective = "gan"\nepoch = 3\n')
    (tmp / "seed.toml").write_text('arch = "mlp"\nobjective = "gan"\nseed = 1.5\n')
    (tmp / "precision.toml").write_text('arch = "mlp"\nobjective = "gan"\nprecision = "8"\n')
    (tmp / "number.toml").write_text('arch = 5\nobjective = "gan"\n')
    (tmp / "latin1.toml").write_bytes(b'arch = "ml\xe9p"\nobjective = "gan"\n')
    (tmp / "deep.toml").write_text("arch = " + "[" * 100_000 + "]" * 100_000 + "\n")
    os.mkfifo(tmp / "pipe.toml")
    (tmp / "callbacks.toml").write_text('arch = "mlp"\nobjective = "gan"\ncallbacks = "progress"\n')
    (tmp / "table.toml").write_text('arch = "mlp"\nobjective = "gan"\n[params.arch.hidden.x]\ny = 1\n')
    for name, replaced, make in (("linked_samples", "samples", lambda p: p.symlink_to(tmp)),
                                 ("pipe_log", "metrics.jsonl", os.mkfifo)):
        shutil.copytree(run, tmp / name)
        shutil.rmtree(tmp / name / replaced) if (tmp / name / replaced).is_dir() else (tmp / name / replaced).unlink()
        make(tmp / name / replaced)
        places[name] = tmp / name
    (tmp / "not-tar").mkdir()
    (tmp / "not-tar" / "cifar-10-python.tar.gz").write_text("hello\n")
    for name, make in (("pipe_config", os.mkfifo),
                       ("deep_config", lambda p: p.write_text("[" * 100_000 + "]" * 100_000))):
        shutil.copytree(run, tmp / name)
        (tmp / name / "config.json").unlink()
        make(tmp / name / "config.json")
        places[name] = tmp / name
    _crafted_data(tmp)
    (tmp / "model.safetensors").write_bytes(b"precious")
    (tmp / "garbage.safetensors").write_bytes(struct.pack("<Q", 10**12) + b"{}")
    return {key: str(value) for key, value in places.items()}


def _tree(root: Path) -> dict[str, str]:
    """Every file's hash and every folder, so a refusal that made an empty folder shows too."""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "folder"
            for p in sorted(root.rglob("*"))}


def test_the_table_has_enough_cases():
    assert len(REFUSED) >= 25 and len({d for d, _, _ in REFUSED}) == len(REFUSED)


@pytest.mark.parametrize("description, args, fragment", REFUSED, ids=[d for d, _, _ in REFUSED])
def test_refused_with_exit_2_one_line_and_nothing_changed(world, monkeypatch, description, args, fragment):
    monkeypatch.chdir(world["tmp"])  # a default run folder would appear there, and fail the check below
    before = _tree(Path(world["tmp"]))
    result = CliRunner().invoke(cli, [a.format(**world) for a in args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and result.output.strip().count("\n") == 0, result.output
    assert fragment in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert _tree(Path(world["tmp"])) == before, "a refused command changed files"


def test_a_refusal_in_a_real_subprocess_is_one_line_without_traceback(world):
    result = run_gan("resume", world["truncated"], "--steps", "9")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("description, damaged", TOLERATED, ids=[d for d, _ in TOLERATED])
def test_tolerated_image_folder_trains_and_warns_once(tmp_path, description, damaged):
    folder = tmp_path / "images"
    _images(folder)
    for name, how in damaged.items():
        _damage(folder / name, how)
    result = CliRunner().invoke(cli, ["run", *FAST, "--dataset", "folder", "--data-dir", str(folder), "--steps", "1",
                                      "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    unreadable = [name for name in damaged if name.endswith((".png", ".jpg"))]
    if unreadable:
        assert len(warnings) == 1 and f"skipped {len(unreadable)} unreadable image file" in warnings[0], warnings
        assert all(name in warnings[0] for name in unreadable)
    else:
        assert warnings == []


def test_docs_troubleshooting_shows_both_tables():
    page = (ROOT / "docs" / "troubleshooting.md").read_text()
    for description, *_ in [*REFUSED, *TOLERATED]:
        assert f"| {description} |" in page, f"docs/troubleshooting.md lacks the row '{description}'"
    rows = {line.split(" | ")[0][2:]: line for line in page.splitlines() if line.startswith("| ")}
    for description, _args, fragment in REFUSED:  # the page shows the real message (paths shortened)
        message = rows[description].split(" | ", 2)[2].replace("\\|", "|")
        assert fragment[:40] in message, f"docs/troubleshooting.md row '{description}' shows {message!r}"
