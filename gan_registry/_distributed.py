"""Data-parallel training on torch.distributed, in the processes that `torchrun` starts.

Every process (rank) holds the whole model and trains on its share of each step's global batch. Gradients are
averaged the way StyleGAN2-ADA and StyleGAN3 do it, with no DistributedDataParallel wrapper: after each phase's
backward, that phase's gradients are concatenated, all-reduced once and divided by the world size. DDP's reducer
expects one forward and one backward per iteration over a fixed set of parameters; a GAN step calls the
discriminator inside the generator's phase with its parameters frozen, runs several phases each with its own
optimiser, and a gradient penalty backpropagates twice. Reducing per phase needs none of that.

World-size invariance: each step's data indices and noise are drawn for the global batch from the run's seed
(every rank draws the same, as its random state is the same), and each rank takes its slice; so two processes with
`--batch-size 64` compute what one process with 64 computes, up to the float rounding of the reduction.

Layer: engine (docs/architecture.md).
"""
from __future__ import annotations

import atexit
import contextlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch

from .errors import LostProcess, SharedError, UserError

LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
"""What torchrun sets in each process it starts."""


@contextlib.contextmanager
def _together(size: int) -> Any:
    """A collective: where it fails, a peer is gone (gloo says 'Connection reset by peer'), and the run stops."""
    try:
        yield
    except RuntimeError as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        first = first.split("] ", 1)[-1][:160]  # gloo prefixes its source file
        raise LostProcess(f"another process of the {size}-process job stopped ({first})") from None


@dataclass
class World:
    """The processes of one job: which one this is, how many there are, what connects them."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None
    """nccl or gloo in a job that torchrun started; None for a plain process (nothing to reduce)."""
    _flags: Any = field(default=None, repr=False)
    """The process group host-side decisions travel on (gloo, so that agreeing costs no device sync)."""

    @property
    def main(self) -> bool:
        """The rank that writes the run folder."""
        return self.rank == 0

    @property
    def joined(self) -> bool:
        return self.backend is not None

    @property
    def many(self) -> bool:
        """More than one process: the collectives have work to do (a 1-process torchrun job runs none)."""
        return self.joined and self.size > 1

    def share(self, n: int) -> slice:
        """This rank's part of `n` items: contiguous, as even as can be, in rank order."""
        return slice(self.rank * n // self.size, (self.rank + 1) * n // self.size)

    def local(self, tensor: Any) -> Any:
        """This rank's rows of a tensor made for the global batch."""
        return tensor if self.size == 1 else tensor[self.share(len(tensor))]

    # -- collectives: every rank calls them at the same point ---------------------------------
    def reduce_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Average the gradients of `parameters` over the ranks: one all-reduce per dtype."""
        if not self.many:
            return
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for parameter in parameters:
            if parameter.grad is not None:
                by_dtype.setdefault(parameter.grad.dtype, []).append(parameter.grad)
        for grads in by_dtype.values():
            self._average_in_place(grads)

    def _average_in_place(self, tensors: list[torch.Tensor]) -> None:
        """Each of `tensors` (of one dtype) replaced by its mean over the ranks, in one all-reduce."""
        flat = torch.cat([t.reshape(-1) for t in tensors])
        with _together(self.size):
            torch.distributed.all_reduce(flat)
        flat.div_(self.size)
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of `tensor` over the ranks (a new tensor)."""
        if not self.many:
            return tensor
        total = tensor.clone()
        with _together(self.size):
            torch.distributed.all_reduce(total)
        return total / self.size

    def gather(self, tensor: torch.Tensor, total: int) -> torch.Tensor:
        """Every rank's `local` rows of a `total`-row tensor, joined in rank order on every rank."""
        if not self.many:
            return tensor
        home = tensor.device
        if self.backend == "nccl":  # NCCL gathers CUDA tensors only
            tensor = tensor.to(torch.device("cuda", torch.cuda.current_device()))
        most = -(-total // self.size)
        padded = tensor.new_zeros((most, *tensor.shape[1:]))
        padded[: len(tensor)] = tensor
        parts = [torch.empty_like(padded) for _ in range(self.size)]
        with _together(self.size):
            torch.distributed.all_gather(parts, padded.contiguous())
        sizes = [len(range(total)[World(rank, self.size).share(total)]) for rank in range(self.size)]
        return torch.cat([part[:n] for part, n in zip(parts, sizes)]).to(home)

    def any(self, flag: bool) -> bool:
        """Whether `flag` is true on any rank: what makes every rank stop at the same step."""
        if not self.many:
            return flag
        value = torch.tensor([int(flag)])
        with _together(self.size):
            torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX, group=self._flags)
        return bool(value.item())

    def broadcast(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank (one copy of the model, however each was built)."""
        if not self.many:
            return
        for tensor in [*module.parameters(), *module.buffers()]:
            with _together(self.size):
                torch.distributed.broadcast(tensor.data, src=0)

    def average_buffers(self, buffers: list[torch.Tensor]) -> None:
        """The mean of floating buffers over the ranks (per-rank BatchNorm statistics made one model's)."""
        floating = [b for b in buffers if b.is_floating_point()]
        if self.many and floating:
            self._average_in_place(floating)

    def decide(self, choose: Callable[[], Any]) -> Any:
        """Rank 0's answer (or its UserError) on every rank: checks of the run folder only rank 0 makes."""
        if not self.many:
            return choose()
        answer: list[Any] = [None, None]
        if self.main:
            try:
                answer[0] = choose()
            except UserError as error:
                answer[1] = str(error)
        with _together(self.size):
            torch.distributed.broadcast_object_list(answer, src=0, group=self._flags)
        if answer[1] is not None:
            raise SharedError(answer[1], quiet=not self.main)
        return answer[0]

    def record(self) -> dict[str, Any]:
        """What config.json says of the processes that trained (facts of the run, not settings to reuse)."""
        return {"world_size": self.size, "backend": self.backend}


SINGLE = World()
_joined: World | None = None


def launched() -> bool:
    """This process was started by torchrun (or another launcher that sets its variables)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def current() -> World:
    """The world this process joined, or a world of one."""
    return _joined or SINGLE


def _env_int(name: str) -> int:
    value = os.environ.get(name, "0")
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{name}={value!r} in the environment is not a number (set by torchrun)") from None


def join(device: torch.device) -> tuple[World, torch.device]:
    """Under torchrun: the process group (NCCL for CUDA, gloo for the CPU) and this rank's device; else
    a world of one and `device` unchanged. Joined once per process."""
    global _joined
    if not launched():
        return SINGLE, device
    local_rank = _env_int("LOCAL_RANK")
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"LOCAL_RANK {local_rank} but {torch.cuda.device_count()} CUDA devices here: start at most"
                            " one process per GPU (torchrun --nproc-per-node)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise UserError(f"distributed training runs on CUDA (NCCL) or the CPU (gloo), not on {device.type}")
    if _joined is not None:
        return _joined, device
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not torch.distributed.is_initialized():
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        torch.distributed.init_process_group(backend, **kwargs)
    flags = torch.distributed.new_group(backend="gloo") if backend == "nccl" else None
    atexit.register(_leave)
    _joined = World(torch.distributed.get_rank(), torch.distributed.get_world_size(), local_rank, backend, flags)
    return _joined, device


def _without_nproc(argv: list[str]) -> list[str]:
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            kept.append(arg)
    return kept


def hand_to_torchrun(nproc: int, plan: Any, extra: tuple[str, ...] = ()) -> None:
    """`gan run --nproc N`: this same command, without --nproc, as torchrun's N processes on this machine.

    The run's checks come first, here, so that a mistake is one line and exit 2 before any process starts. The
    process then becomes torchrun (exec): a scheduler's signals and the exit status are torchrun's own."""
    if launched():
        raise UserError("--nproc starts torchrun itself; under torchrun leave it out")
    settings = plan.settings
    networks = torch.nn.ModuleDict(plan.build_networks(torch.device("cpu"))) if settings.sync_bn is False else None
    check_split(nproc, settings.batch_size, networks, settings.sync_bn)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
               "-m", "gan_registry", *_without_nproc(sys.argv[1:]), *extra]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)


def _leave() -> None:
    """Close the process group before the interpreter goes: left to its destructor, gloo aborts the process."""
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def check_split(processes: int, batch_size: int, networks: Any = None, sync_bn: bool | None = None) -> None:
    """The global batch splits evenly over the processes, and, with --no-sync-bn, leaves every BatchNorm of
    `networks` at least two samples a process."""
    if batch_size % processes:
        raise UserError(f"--batch-size {batch_size} is the global batch and must split evenly over the {processes}"
                        f" processes; give a multiple of {processes} (resuming: a number of processes dividing"
                        f" {batch_size})")
    share = batch_size // processes
    if processes > 1 and sync_bn is False and networks is not None and batchnorms(networks) and share < 2:
        raise UserError(f"--no-sync-bn: each of the {processes} processes would normalise a batch of {share},"
                        " which BatchNorm cannot; drop --no-sync-bn or raise --batch-size")


# -- BatchNorm over the global batch -----------------------------------------------------------
class _SumOverRanks(torch.autograd.Function):
    """all_reduce(SUM) with its gradient, itself differentiable: gradient penalties backpropagate through it twice."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone(memory_format=torch.contiguous_format)
        with _together(torch.distributed.get_world_size()):
            torch.distributed.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _SumOverRanks.apply(grad)


class SyncedBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch, on every device torch.distributed runs.

    `torch.nn.SyncBatchNorm` runs on CUDA only and has no double backward; this one sums each channel's count, sum
    and sum of squares over the ranks (one all-reduce per call) and is differentiable to any order. Its state_dict
    is a BatchNorm's: checkpoints do not know it was used.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        local = x.float()
        count = torch.full((1,), local.numel() / local.shape[1], device=x.device)
        stats = _SumOverRanks.apply(torch.cat([count, local.sum(dims), (local * local).sum(dims)]))
        n, channels = stats[0], x.shape[1]
        mean = stats[1:1 + channels] / n
        var = (stats[1 + channels:] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked.float()
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor)
                unbiased = var.detach() * n / (n - 1).clamp_min(1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        y = (local - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def batchnorms(module: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def synchronise_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """`module` with each BatchNorm replaced by a SyncedBatchNorm holding its parameters and statistics."""
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncedBatchNorm):
        synced = SyncedBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                 module.track_running_stats)
        synced.to(next(iter(module.state_dict().values())).device if module.state_dict() else "cpu")
        synced.load_state_dict(module.state_dict())
        synced.train(module.training)
        return synced
    for name, child in module.named_children():
        replaced = synchronise_batchnorm(child)
        if replaced is not child:
            setattr(module, name, replaced)
    return module
