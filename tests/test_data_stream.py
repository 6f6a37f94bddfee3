"""The engine's batches from uint8 images and from a Stream: values mapped on the device, each process its own
shards, an epoch as long as the fewest-filled process, resume by skipping."""
from __future__ import annotations

import pytest
import torch

from gan_registry import Stream, UserError, to_values
from gan_registry._distributed import World
from gan_registry.data import Batches

CPU = torch.device("cpu")


class Numbered(Stream):
    """Shards of consecutive numbers: sample k is a 1x1x1 image of value k, labelled k % 3."""

    def __init__(self, sizes: list[int]) -> None:
        self.shards = []
        start = 0
        for size in sizes:
            self.shards.append(list(range(start, start + size)))
            start += size

    def __len__(self) -> int:
        return sum(map(len, self.shards))

    def per_process(self, world: int) -> int:
        return sum(sorted(map(len, self.shards))[: len(self.shards) // world])

    def read(self, *, seed, epoch, rank, world, skip=0):
        order = torch.randperm(len(self.shards), generator=torch.Generator().manual_seed(seed * 7 + epoch))
        mine = [k for i in order[rank::world].tolist() for k in self.shards[i]]
        for k in mine[skip:]:
            yield torch.tensor([[[k]]], dtype=torch.uint8), k % 3


def test_uint8_images_reach_the_loop_in_the_value_range():
    images = torch.tensor([0, 51, 255], dtype=torch.uint8).view(3, 1, 1, 1)
    assert torch.equal(to_values(images, (-1.0, 1.0)).flatten(), torch.tensor([-1.0, 51 / 127.5 - 1, 1.0]))
    assert torch.equal(to_values(images, (0.0, 1.0)).flatten(), images.flatten().float() / 255)
    floats = torch.rand(3)
    assert to_values(floats, (-1.0, 1.0)) is floats
    batches = Batches(images.repeat(4, 1, 1, 1), 4, seed=0, device=CPU, workers=0, value_range=(-1.0, 1.0))
    batch = batches.next()
    assert batch.dtype == torch.float32 and batch.min() >= -1 and batch.max() <= 1


def test_each_process_reads_its_own_shards_and_labels_come_with_samples():
    stream = Numbered([6, 6, 6, 4])  # 22 samples; 2 processes: at least 6 + 4 each
    seen = []
    for rank in (0, 1):
        batches = Batches(stream, 4, seed=1, device=CPU, labels=torch.zeros(22, dtype=torch.int64),
                          world=World(rank, 2), value_range=(0.0, 255.0))
        assert batches.local_size == 2 and batches.per_epoch == 10 // 2
        values = []
        for _ in range(batches.per_epoch):
            batch = batches.next()
            assert batch.shape == (2, 1, 1, 1)
            assert torch.equal(batches.last_labels, batch.flatten().long() % 3)
            values += batch.flatten().long().tolist()
        assert batches.epoch == 1 and batches.position == 0
        seen.append(set(values))
    assert not seen[0] & seen[1]


def test_a_resumed_stream_goes_on_with_the_same_samples():
    stream = Numbered([5, 5, 5])
    straight = Batches(stream, 3, seed=2, device=CPU)
    expected = [straight.next().flatten().tolist() for _ in range(9)]  # into the second epoch
    half = Batches(stream, 3, seed=2, device=CPU)
    for _ in range(4):
        half.next()
    resumed = Batches(stream, 3, seed=2, device=CPU)
    resumed.restore(half.state())
    assert [resumed.next().flatten().tolist() for _ in range(5)] == expected[4:]


def test_a_stream_too_short_for_a_batch_or_cut_short_is_refused():
    with pytest.raises(UserError, match="fewer than its batch of 4"):
        Batches(Numbered([3]), 4, seed=0, device=CPU)

    class Liar(Numbered):
        def read(self, **where):
            yield from list(super().read(**where))[:5]

    batches = Batches(Liar([8]), 4, seed=0, device=CPU)
    batches.next()
    with pytest.raises(UserError, match="ended early"):
        batches.next()
