"""How fast is the engine's loop against a hand-written PyTorch GAN loop on the same models?

    python benchmarks/engine_overhead.py [--arch mlp] [--dataset digits] [--image-size N] [--batch-size 64]
        [--steps 400] [--repeats 5] [--device cpu] [--precision 32|bf16|16] [--compile] [--channels-last]

Prints images/s of both, the median of `--repeats` interleaved runs, and their ratio (engine / plain; above 1.0
means the engine is faster). The plain loop is the PyTorch DCGAN tutorial's: one generator forward shared by
both updates, BCE on logits, data as one tensor, with the same autocast / compile / memory format when asked.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from gan_registry._plan import Settings, make_plan
from gan_registry.plugins import load_registry
from gan_registry.training import Trainer, seed_everything

DTYPES = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def engine_rate(plan, steps: int, device: torch.device, warmup: int = 10) -> float:
    with tempfile.TemporaryDirectory() as run_dir:
        seed_everything(0)
        trainer = Trainer(plan, run_dir, device, progress=False, callbacks=[])  # the loop alone
        trainer.train(max_steps=warmup)  # warm-up (and compilation)
        synchronize(device)
        start = time.perf_counter()
        trainer.train(max_steps=warmup + steps)
        synchronize(device)
        return steps * plan.settings.batch_size / (time.perf_counter() - start)


def plain_rate(plan, steps: int, device: torch.device, precision: str, compile: bool, channels_last: bool) -> float:
    seed_everything(0)
    nets = plan.build_networks(device)
    G, D = nets["generator"], nets["discriminator"]
    if channels_last:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    if compile:
        G.compile()
        D.compile()
    data = plan.data.load().to(device)
    if channels_last and data.dim() == 4:
        data = data.contiguous(memory_format=torch.channels_last)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    b = plan.settings.batch_size
    dtype = DTYPES[precision]
    scaler_d = scaler_g = None
    if precision == "16":
        scaler_d, scaler_g = torch.amp.GradScaler(device.type), torch.amp.GradScaler(device.type)

    def autocast():
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=dtype)

    def update(loss, optimizer, scaler):
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    def step():
        real = data[torch.randint(len(data), (b,), device=device)]
        with autocast():
            fake = G(torch.randn(b, plan.latent_dim, device=device))
            real_logits, fake_logits = D(real).reshape(-1), D(fake.detach()).reshape(-1)
            loss_d = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                      + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        update(loss_d, opt_d, scaler_d)
        with autocast():
            logits = D(fake).reshape(-1)
            loss_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        update(loss_g, opt_g, scaler_g)

    for _ in range(10):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return steps * b / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mlp")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=list(DTYPES), default="32")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    plan = make_plan(
        load_registry(),
        Settings(arch=args.arch, objective="gan", dataset=args.dataset, batch_size=args.batch_size,
                 image_size=args.image_size, device=args.device, steps=args.steps, precision=args.precision,
                 compile=args.compile, channels_last=args.channels_last),
    )
    engine, plain = [], []
    for _ in range(args.repeats):  # interleaved, so load on the machine affects both alike
        engine.append(engine_rate(plan, args.steps, device))
        plain.append(plain_rate(plan, args.steps, device, args.precision, args.compile, args.channels_last))
    median_engine, median_plain = statistics.median(engine), statistics.median(plain)
    extras = " ".join(f for f, on in (("compile", args.compile), ("channels_last", args.channels_last)) if on)
    print(f"{args.arch} gan on {args.dataset} ({plan.spec.sample_shape}), batch {args.batch_size}, {args.device}, "
          f"precision {args.precision} {extras}, {args.steps} steps, median of {args.repeats}")
    print(f"engine: {median_engine:10.1f} images/s")
    print(f"plain:  {median_plain:10.1f} images/s")
    print(f"ratio engine/plain: {median_engine / median_plain:.2f}")


if __name__ == "__main__":
    main()
