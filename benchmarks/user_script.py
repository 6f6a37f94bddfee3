"""`gan run --arch mlp --objective gan` against the script a user would write for the same model, and against a
hand-tuned loop of it, on 8,000 MNIST-format 28 px digits this script writes, 10 epochs, paired in one run.

    python benchmarks/user_script.py [--repeats 3] [--epochs 10] [--images 8000]

Each contender is a fresh process timed from its start (imports included) to its exit:
- gan:    `gan run --arch mlp --objective gan --dataset mnist --data-dir D --epochs 10` as a user types it (its
          per-epoch grid and checkpoint included);
- script: Sigmoid + BCELoss, a DataLoader over a TensorDataset, two generator forwards, a grid per epoch with
          torchvision's save_image (the PyTorch-GAN `gan.py` way);
- tuned:  data as one tensor, logits, one generator forward, no host sync, nothing written.
Prints steady-state images/s (epochs after the first) and wall-clock seconds, medians over the repeats, and
their ratios: machine-independent, unlike the absolute figures.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODEL = '''
import torch
from torch import nn

def generator():
    return nn.Sequential(nn.Linear(64, 256), nn.BatchNorm1d(256), nn.ReLU(True),
                         nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU(True), nn.Linear(256, 784), nn.Tanh())

def discriminator(sigmoid):
    layers = [nn.Flatten(), nn.Linear(784, 256), nn.LeakyReLU(0.2, True), nn.Linear(256, 256), nn.LeakyReLU(0.2, True),
              nn.Linear(256, 1)]
    return nn.Sequential(*layers, *([nn.Sigmoid()] if sigmoid else []))

def load(root):
    import numpy as np
    raw = open(f"{root}/MNIST/raw/train-images-idx3-ubyte", "rb").read()
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)
    return torch.from_numpy(images.copy()).float().div(127.5).sub(1)
'''

SCRIPT = MODEL + '''
import json, sys, time
from torch.utils.data import DataLoader, TensorDataset
from torchvision.utils import save_image

root, out, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.manual_seed(0)
loader = DataLoader(TensorDataset(load(root)), batch_size=64, shuffle=True)
G, D = generator(), discriminator(sigmoid=True)
loss = nn.BCELoss()
opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
seen, started = 0, None
for epoch in range(epochs):
    if epoch == 1:
        started, seen = time.perf_counter(), 0
    for (real,) in loader:
        b = real.shape[0]
        valid, fake_label = torch.ones(b, 1), torch.zeros(b, 1)
        opt_g.zero_grad()
        g_loss = loss(D(G(torch.randn(b, 64))), valid)
        g_loss.backward()
        opt_g.step()
        opt_d.zero_grad()
        fake = G(torch.randn(b, 64)).detach()  # the second generator forward
        d_loss = (loss(D(real), valid) + loss(D(fake), fake_label)) / 2
        d_loss.backward()
        opt_d.step()
        seen += b
    save_image(G(torch.randn(25, 64)).view(-1, 1, 28, 28).detach(), f"{out}/{epoch}.png", nrow=5, normalize=True)
print(json.dumps({"images_per_s": seen / (time.perf_counter() - started)}))
'''

TUNED = MODEL + '''
import json, sys, time
import torch.nn.functional as F

root, out, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.manual_seed(0)
data = load(root)
G, D = generator(), discriminator(sigmoid=False)
opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
b = 64
seen, started = 0, None
for epoch in range(epochs):
    if epoch == 1:
        started, seen = time.perf_counter(), 0
    order = torch.randperm(len(data))
    for start in range(0, len(data) - b + 1, b):
        real = data[order[start:start + b]]
        fake = G(torch.randn(b, 64))
        d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        for p in D.parameters():
            p.requires_grad_(False)
        g_loss = F.softplus(-D(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for p in D.parameters():
            p.requires_grad_(True)
        seen += b
print(json.dumps({"images_per_s": seen / (time.perf_counter() - started)}))
'''


def write_digits(root: Path, count: int) -> None:
    """`count` 28 px digits in MNIST's IDX layout: scikit-learn's 1,797 upscaled, shifted by up to 2 px."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.as_tensor(digits.images, dtype=torch.float32)[:, None] / 16
    big = F.interpolate(small, size=(24, 24), mode="bilinear", align_corners=False).clamp(0, 1)
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(big), count)
    shifts = rng.integers(0, 5, (count, 2))
    images = np.zeros((count, 28, 28), np.uint8)
    for i, (pick, (dy, dx)) in enumerate(zip(picks, shifts)):
        images[i, dy:dy + 24, dx:dx + 24] = (big[pick, 0].numpy() * 255).round()
    labels = digits.target[picks].astype(np.uint8)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)

    def idx(array: np.ndarray) -> bytes:
        return bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + array.tobytes()

    for prefix, n in (("train", count), ("t10k", min(count, 1000))):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(idx(images[:n]))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(idx(labels[:n]))


def timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} failed:\n{result.stderr[-3000:]}")
    return seconds, result.stdout


def gan_steady_rate(run_dir: Path) -> float:
    """images/s of the log lines after the first epoch, as gan run measured them."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [r["images_per_s"] for r in records if r.get("epoch", 0) >= 1 and r.get("images_per_s")]
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--images", type=int, default=8000)
    args = parser.parse_args()
    gan = [os.path.join(os.path.dirname(sys.executable), "gan")]
    if not os.path.exists(gan[0]):
        gan = [sys.executable, "-m", "gan_registry"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_digits(tmp / "data", args.images)
        for name, code in (("script", SCRIPT), ("tuned", TUNED)):
            (tmp / f"{name}.py").write_text(code)
        rates: dict[str, list[float]] = {"gan": [], "script": [], "tuned": []}
        walls: dict[str, list[float]] = {"gan": [], "script": [], "tuned": []}
        for repeat in range(args.repeats):  # interleaved: load on the machine falls on all three alike
            for name in ("script", "tuned"):
                out = tmp / f"{name}-{repeat}"
                out.mkdir()
                seconds, stdout = timed([sys.executable, str(tmp / f"{name}.py"), str(tmp / "data"), str(out),
                                         str(args.epochs)])
                walls[name].append(seconds)
                rates[name].append(json.loads(stdout.strip().splitlines()[-1])["images_per_s"])
            run_dir = tmp / f"gan-{repeat}"
            seconds, _ = timed([*gan, "run", "--arch", "mlp", "--objective", "gan", "--dataset", "mnist",
                                "--data-dir", str(tmp / "data"), "--epochs", str(args.epochs), "--batch-size", "64",
                                "--out", str(run_dir), "--no-progress"])
            walls["gan"].append(seconds)
            rates["gan"].append(gan_steady_rate(run_dir))
    rate = {k: statistics.median(v) for k, v in rates.items()}
    wall = {k: statistics.median(v) for k, v in walls.items()}
    print(f"mlp gan, {args.images} images of 28 px, batch 64, {args.epochs} epochs, median of {args.repeats}")
    print(f"{'':8}{'images/s (steady)':>20}{'wall-clock s':>15}")
    for name in ("gan", "script", "tuned"):
        print(f"{name:8}{rate[name]:20.0f}{wall[name]:15.2f}")
    print(f"steady state gan/tuned: {rate['gan'] / rate['tuned']:.2f}   gan/script: {rate['gan'] / rate['script']:.2f}")
    print(f"wall-clock tuned/gan:   {wall['tuned'] / wall['gan']:.2f}   script/gan: {wall['script'] / wall['gan']:.2f}"
          "   (above 1: gan finishes first)")


if __name__ == "__main__":
    main()
