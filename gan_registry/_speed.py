"""What makes a run fast, and what keeps it reproducible: mixed precision (`--precision`), compilation
(`--compile`), channels_last memory, deterministic kernels (`--deterministic`), and the input gradients of
gradient penalties that stay right under all of them.

Layer: engine (docs/architecture.md).
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any, Iterator

import torch

from ._components import PRECISION_NAMES

_NOTHING = nullcontext()  # fp32: no context to enter in the hot loop
PRECISIONS = dict(zip(PRECISION_NAMES, (None, torch.bfloat16, torch.float16)))

_SCALER: ContextVar[Any] = ContextVar("gan_registry_grad_scaler", default=None)
"""The GradScaler of the phase whose loss is being computed (fp16 only): what input_gradients unscales by."""


def input_gradients(outputs: torch.Tensor, inputs: torch.Tensor, *, create_graph: bool = True) -> torch.Tensor:
    """The gradient of `outputs.sum()` with respect to `inputs`, in float32: what gradient penalties
    (WGAN-GP, R1/R2) are made of. Use it rather than `torch.autograd.grad` so that they stay right under
    `--precision 16`: there the loss scale of the phase's GradScaler is applied before the backward (small fp16
    gradients would underflow to zero) and taken off after, as the torch.amp docs' gradient-penalty recipe does;
    the scale is used as a tensor, so this adds no host sync. `create_graph` keeps the gradient's own graph, so
    that a penalty on it trains the discriminator.
    """
    total = outputs.float().sum()
    scaler = _SCALER.get()
    if scaler is None:
        (grad,) = torch.autograd.grad(total, inputs, create_graph=create_graph)
        return grad.float()
    scale = scaler.scale(torch.ones((), device=total.device))
    (grad,) = torch.autograd.grad(total * scale, inputs, create_graph=create_graph)
    return grad.float() / scale


class Precision:
    """Autocast and, for fp16, one GradScaler per phase (each optimiser's gradients overflow on their own)."""

    def __init__(self, name: str, device: torch.device, phase_names: list[str],
                 reduce: Any = None) -> None:
        """`reduce(optimizer)`: what happens to the gradients between backward and step (a distributed run
        averages them over its ranks)."""
        self.name, self.device, self.reduce = name, device, reduce
        self.dtype = PRECISIONS[name]
        self.scalers = {phase: torch.amp.GradScaler(device.type) for phase in phase_names} if name == "16" else {}

    def loss(self, phase: str) -> Any:
        """Where a phase's loss is computed: under autocast, with its scaler known to `input_gradients`."""
        return self._mixed(phase) if self.dtype is not None else _NOTHING

    @contextmanager
    def _mixed(self, phase: str) -> Iterator[None]:
        token = _SCALER.set(self.scalers.get(phase))
        try:
            with torch.autocast(self.device.type, dtype=self.dtype):
                yield
        finally:
            _SCALER.reset(token)

    def step(self, phase: str, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> torch.Tensor | None:
        """Backward and optimiser step; under fp16 scaled, and skipped where the gradients overflowed (the
        scaler reads whether they did: the one host sync per step that fp16 costs). Returns, under fp16, 1.0 on
        the device where the step was skipped (the scaler lowered its scale) and 0.0 where not."""
        scaler = self.scalers.get(phase)
        if scaler is None:
            loss.backward()
            if self.reduce is not None:
                self.reduce(optimizer)
            optimizer.step()
            return None
        scaler.scale(loss).backward()
        if self.reduce is not None:  # scaled: an overflow on one rank is an inf on all, and all skip the step
            self.reduce(optimizer)
        scaler.step(optimizer)
        before = scaler.scale(torch.ones((), device=loss.device))  # the scale as a new tensor: no host sync
        scaler.update()
        return (scaler.scale(torch.ones((), device=loss.device)) < before).float()

    def state_dict(self) -> dict[str, Any]:
        return {phase: scaler.state_dict() for phase, scaler in self.scalers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for phase, scaler in self.scalers.items():
            if phase in state:
                scaler.load_state_dict(state[phase])


def compile_networks(networks: dict[str, torch.nn.Module], roles: list[str], *, eager: dict[str, str],
                     backend: str) -> None:
    """torch.compile each piece in place (its state_dict keys unchanged), but those in `eager` (role -> why),
    which are said once and run eagerly."""
    for role in roles:
        if role in eager:
            print(f"--compile: the {role} runs eager: {eager[role]}", file=sys.stderr, flush=True)
            continue
        networks[role].compile(backend=backend)


def to_channels_last(networks: dict[str, torch.nn.Module]) -> None:
    for network in networks.values():
        network.to(memory_format=torch.channels_last)


def configure_kernels(device: torch.device, deterministic: bool) -> None:
    """`--deterministic`: PyTorch's deterministic algorithms (an op without one is an error naming it), cuDNN
    without autotuning, cuBLAS with a fixed workspace; otherwise cuDNN picks its fastest convolutions, unless the
    process chose deterministic algorithms itself (a script's own setting is left as it is)."""
    if deterministic:
        torch.use_deterministic_algorithms(True)
    if device.type == "cuda":
        strict = torch.are_deterministic_algorithms_enabled()
        if strict:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = not strict
        torch.backends.cudnn.deterministic = strict
