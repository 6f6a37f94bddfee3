"""Batches for the training loop, in an order that depends only on (seed, epoch).

Because each epoch's order is derived from the seed and the epoch number, resuming needs
only the epoch and the position within it: no sampler state to pickle.

Layer: engine (docs/architecture.md).
"""
from __future__ import annotations

import contextlib
import itertools
import signal
import threading
from typing import Any, Iterator

import torch

from ._components import Stream, to_values
from ._distributed import SINGLE
from .errors import STOP_EXIT_CODES, UserError

DEVICE_SHARE = 0.25
"""The most of an accelerator's memory a dataset held in memory may take there; a larger one (a memory-mapped
packed array, say) stays in host memory and each batch is copied over."""


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


STOP_SIGNALS = set(STOP_EXIT_CODES)


def _ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave SIGINT/SIGTERM to the main process, which checkpoints and stops.

    A scheduler signals every process of a job; a worker that died of it would make torch raise in the
    main process before it could save. Workers start with the signals blocked (see `_workers_started`):
    ignore them, then unblock.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def _workers_started() -> Iterator[None]:
    """Block SIGINT/SIGTERM while workers are forked, so none can die of one before it ignores them.

    The main process gets a signal that came meanwhile as soon as they are unblocked.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _OrderSampler(torch.utils.data.Sampler):
    def __init__(self, order: torch.Tensor) -> None:
        self.order = order

    def __iter__(self) -> Iterator[int]:
        return iter(self.order.tolist())

    def __len__(self) -> int:
        return len(self.order)


def fits_device(tensor: torch.Tensor, device: torch.device) -> bool:
    """Whether a dataset tensor is small enough to be held on `device` (always, for the CPU)."""
    if device.type != "cuda":
        return True
    return tensor.numel() * tensor.element_size() <= DEVICE_SHARE * torch.cuda.get_device_properties(device).total_memory


class Batches:
    """Endless full batches, as the networks take them (uint8 images mapped onto `value_range` on the device);
    `epoch` and `position` say where it stands.

    In a distributed run (`world`) `batch_size` is the global batch: every rank walks the same order of global
    batches and is handed its own slice of each, so `epoch` and `position` mean the same whatever the world size.
    A `Stream` is read differently: each rank reads its own shards, its batch the rank's share of the global one.
    """

    def __init__(self, source: Any, batch_size: int, seed: int, device: torch.device, workers: int = 2,
                 labels: torch.Tensor | None = None, world: Any = None,
                 value_range: tuple[float, float] | None = None) -> None:
        self.world = world or SINGLE
        self.streamed = isinstance(source, Stream)
        self.in_memory = isinstance(source, torch.Tensor)
        if labels is not None and not self.streamed and len(labels) != len(source):
            raise ValueError(f"{len(labels)} labels for {len(source)} samples")
        self.labels = None if labels is None else labels.to(device)
        self.last_labels: torch.Tensor | None = None
        """The labels of the batch `next()` returned last (None for unlabelled data)."""
        self.on_host = self.in_memory and not fits_device(source, device)
        self.source = source.to(device) if self.in_memory and not self.on_host else source
        self.value_range = value_range
        self.n = len(source)
        self.batch_size, self.seed, self.device, self.workers = batch_size, seed, device, workers
        self.local_size = len(range(batch_size)[self.world.share(batch_size)])
        if self.streamed:
            per_process = source.per_process(self.world.size)
            self.per_epoch = per_process // self.local_size
            if self.per_epoch < 1:
                raise UserError(f"each of {self.world.size} process(es) reads {per_process} samples of the stream in"
                                f" an epoch, fewer than its batch of {self.local_size}; lower --batch-size")
        else:
            if self.n < batch_size:
                raise UserError(f"the dataset has {self.n} samples, fewer than one batch of {batch_size}; lower"
                                " --batch-size")
            self.per_epoch = self.n // batch_size
        self.epoch, self.position = 0, 0
        self._iter: Iterator[torch.Tensor] | None = None

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def restore(self, state: dict[str, int]) -> None:
        if not 0 <= state["position"] < self.per_epoch:  # a crafted or edited checkpoint; an epoch has no more
            raise ValueError(f"data.position {state['position']} is outside an epoch of {self.per_epoch} batches")
        self.epoch, self.position = state["epoch"], state["position"]
        self._iter = None

    def _epoch_iter(self) -> Iterator[torch.Tensor]:
        if self.streamed:
            yield from self._stream_iter()
            return
        global_order = epoch_order(self.n, self.seed, self.epoch)[: self.per_epoch * self.batch_size]
        # This rank's slice of each global batch, the batches in the same order on every rank.
        order = global_order.view(self.per_epoch, self.batch_size)[:, self.world.share(self.batch_size)].reshape(-1)
        size = len(order) // self.per_epoch
        start = self.position * size
        if self.in_memory:
            labels_order = order.to(self.device)
            order = order if self.on_host else labels_order
            for i in range(start, len(order), size):
                if self.labels is not None:
                    self.last_labels = self.labels.index_select(0, labels_order[i : i + size])
                batch = self.source.index_select(0, order[i : i + size])
                yield to_values(batch.to(self.device, non_blocking=True), self.value_range)
            return
        loader = torch.utils.data.DataLoader(
            self.source,
            batch_size=size,
            sampler=_OrderSampler(order[start:]),
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            worker_init_fn=_ignore_stop_signals,
            # Workers' seeds from (seed, epoch), not from the global RNG: a resumed run starts one
            # iterator more than an uninterrupted one, and must still draw what it would have.
            generator=torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch + 1),
        )
        with _workers_started():
            batches = iter(loader)
        label_order = order[start:].to(self.device) if self.labels is not None else None
        for i, batch in enumerate(batches):
            if isinstance(batch, (list, tuple)):
                batch = batch[0]
            if label_order is not None:  # the sampler hands out indices in this order
                self.last_labels = self.labels.index_select(0, label_order[i * size:(i + 1) * size])
            yield to_values(batch.to(self.device, non_blocking=True), self.value_range)

    def _stream_iter(self) -> Iterator[torch.Tensor]:
        size = self.local_size
        samples = self.source.read(seed=self.seed, epoch=self.epoch, rank=self.world.rank, world=self.world.size,
                                   skip=self.position * size)
        try:
            for _ in range(self.position, self.per_epoch):
                pairs = list(itertools.islice(samples, size))
                if len(pairs) < size:
                    raise UserError(f"the data stream of process {self.world.rank} ended early in epoch {self.epoch}:"
                                    f" its shards hold fewer samples than their header states")
                if self.labels is not None:
                    labels = [label for _, label in pairs]
                    if None in labels:
                        raise UserError("a sample of the data stream has no class label; the dataset states classes")
                    self.last_labels = torch.tensor(labels, dtype=torch.int64).to(self.device, non_blocking=True)
                batch = torch.stack([torch.as_tensor(sample) for sample, _ in pairs])
                yield to_values(batch.to(self.device, non_blocking=True), self.value_range)
        finally:
            close = getattr(samples, "close", None)
            if close is not None:
                close()

    def close(self) -> None:
        """Let go of the DataLoader's workers; the next batch starts a new loader at the same position."""
        if self._iter is not None:
            self._iter.close()
            self._iter = None

    def next(self) -> torch.Tensor:
        """The next batch; `epoch` counts completed epochs as soon as the last batch is handed out."""
        if self._iter is None:
            self._iter = self._epoch_iter()
        batch = next(self._iter)
        self.position += 1
        if self.position == self.per_epoch:
            self.epoch, self.position, self._iter = self.epoch + 1, 0, None
        return batch
