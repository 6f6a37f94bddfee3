"""How fast is the engine's loop against a hand-written PyTorch GAN loop on the same models?

    python benchmarks/engine_overhead.py [--arch mlp] [--dataset digits] [--steps 400] [--repeats 3]

Prints images/s of both and their ratio (engine / plain; above 1.0 means the engine is faster).
The plain loop is the PyTorch DCGAN tutorial's: one generator forward shared by both updates.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F

from gan_registry._plan import Settings, make_plan
from gan_registry.plugins import load_registry
from gan_registry.training import Trainer, seed_everything


def engine_rate(plan, steps: int) -> float:
    with tempfile.TemporaryDirectory() as run_dir:
        seed_everything(0)
        trainer = Trainer(plan, run_dir, torch.device("cpu"), progress=False, callbacks=[])  # the loop alone
        trainer.train(max_steps=5)  # warm-up
        start = time.perf_counter()
        trainer.train(max_steps=5 + steps)
        return steps * plan.settings.batch_size / (time.perf_counter() - start)


def plain_rate(plan, steps: int) -> float:
    seed_everything(0)
    nets = plan.build_networks("cpu")
    G, D = nets["generator"], nets["discriminator"]
    data = plan.data.load()
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    b = plan.settings.batch_size

    def step():
        real = data[torch.randint(len(data), (b,))]
        fake = G(torch.randn(b, plan.latent_dim))
        loss_d = F.binary_cross_entropy_with_logits(D(real), torch.ones(b)) + F.binary_cross_entropy_with_logits(
            D(fake.detach()), torch.zeros(b)
        )
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = F.binary_cross_entropy_with_logits(D(fake), torch.ones(b))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * b / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mlp")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    plan = make_plan(
        load_registry(),
        Settings(arch=args.arch, objective="gan", dataset=args.dataset, batch_size=args.batch_size,
                 image_size=args.image_size, device="cpu", steps=args.steps),
    )
    engine, plain = [], []
    for _ in range(args.repeats):  # interleaved, so load on the machine affects both alike
        engine.append(engine_rate(plan, args.steps))
        plain.append(plain_rate(plan, args.steps))
    best_engine, best_plain = max(engine), max(plain)
    print(f"{args.arch} gan on {args.dataset}, batch {args.batch_size}, {args.steps} steps, best of {args.repeats}")
    print(f"engine: {best_engine:10.1f} images/s")
    print(f"plain:  {best_plain:10.1f} images/s")
    print(f"ratio engine/plain: {best_engine / best_plain:.2f}")


if __name__ == "__main__":
    main()
