"""Class-conditional runs (`gan run --conditional`): the labels a step's networks are conditioned on, bound by the
engine so that objectives stay as they are, and the labels of generated samples (grids, `gan sample --class`).

Within a phase every call is conditioned on one label batch: the real batch's labels where the phase draws one
(so fakes are labelled as the data is: from its class frequencies), else the step's last real labels, else a draw
from the class frequencies. Real, generated and interpolated samples of a phase then share their labels, which is
what gradient penalties on mixtures of them need.

Layer: primitives (docs/architecture.md).
"""
from __future__ import annotations

from typing import Any

import torch

from .errors import PluginFailure, UserError


GRID_CLASSES, PER_ROW = 16, 8
"""A conditional generator's pictures: a row of 8 samples for each class drawn (training grids: the first 16)."""


def class_frequencies(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """How often each class occurs in the training labels, as float32 weights (N,) -> (num_classes,)."""
    return torch.bincount(labels.long().flatten(), minlength=num_classes).float()


def draw_labels(frequencies: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """`n` labels drawn with the data's class frequencies (on their device: no host sync)."""
    return torch.multinomial(frequencies, n, replacement=True, generator=generator)


def seeded_labels(frequencies: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """`n` labels drawn with the class frequencies from `seed` alone, on the CPU (what sampling and evaluation use)."""
    return draw_labels(frequencies.cpu(), n, torch.Generator().manual_seed(seed + 1))


def rows_of_classes(classes: list[int], per_row: int) -> torch.Tensor:
    """Labels of a class-per-row grid: each of `classes` `per_row` times, in order."""
    return torch.tensor(classes, dtype=torch.int64).repeat_interleave(per_row)


def choose_classes(asked: tuple[str, ...], names: tuple[str, ...] | list[str] | None, source: Any) -> list[int]:
    """The class indices `gan sample --class` names, by name or by index; a class the run has not is refused."""
    if not names:
        raise UserError(f"--class: {source} is not conditional (train with `gan run --conditional` to draw a class)")
    names = list(names)
    chosen = []
    for text in asked:
        if text in names:
            chosen.append(names.index(text))
        elif text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
            chosen.append(int(text))
        else:
            shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            raise UserError(f"--class {text}: the run has {len(names)} classes, 0 to {len(names) - 1} ({shown})")
    return chosen


def _storage(x: torch.Tensor) -> int:
    return x.untyped_storage().data_ptr()


class ConditionedGenerator(torch.nn.Module):
    """The generator as the objective sees it in a conditional run: `G(z)` is `G(z, the phase's labels)`."""

    def __init__(self, generator: torch.nn.Module, frequencies: torch.Tensor) -> None:
        super().__init__()
        self.generator = generator
        self.register_buffer("frequencies", frequencies, persistent=False)
        self.labels: torch.Tensor | None = None
        self.made: list[tuple[torch.Tensor, torch.Tensor]] = []
        """(samples, their labels) made since the generator last stepped: a discriminator call on them takes those
        labels. Held detached: the storage stays (no other batch can reuse its address), the graph does not."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        labels = self.labels
        if labels is None or len(labels) != len(z):
            labels = draw_labels(self.frequencies, len(z))
        samples = self.generator(z, labels)
        self.made.append((samples.detach(), labels))
        return samples


class ConditionedDiscriminator(torch.nn.Module):
    """The discriminator as the objective sees it in a conditional run: `D(x)` is `D(x, the labels of x)`.

    An auxiliary loss the discriminator returns beside its scores (ACGAN's classifier) is kept for the engine to
    add to the phase's loss, for calls on the phase's real or generated batch (not on a gradient penalty's
    interpolates, which have no class of their own).
    """

    def __init__(self, discriminator: torch.nn.Module, generator: ConditionedGenerator, owner: Any) -> None:
        super().__init__()
        self.discriminator, self.owner = discriminator, owner
        # Not a submodule: the discriminator's optimiser is built from this module's parameters, and the
        # generator's are not the discriminator's to train (as a submodule they made every phase "train" it).
        object.__setattr__(self, "maker", generator)
        self.labels: torch.Tensor | None = None
        self.real: torch.Tensor | None = None
        self.auxiliary: list[torch.Tensor] = []

    def begin(self, labels: torch.Tensor, real: torch.Tensor | None) -> None:
        """A phase starts: the labels of its calls, its real batch."""
        self.labels, self.real = labels, real
        self.auxiliary = []
        self.maker.labels = labels

    def _labels_of(self, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """The labels of `x`, and whether it is the phase's own real or generated batch."""
        storage = _storage(x)
        for samples, labels in self.maker.made:  # first: a batch generated in an earlier phase keeps its labels
            if storage == _storage(samples) and len(x) == len(samples):
                return labels, True
        if self.real is not None and storage == _storage(self.real) and len(x) == len(self.real):
            return self.labels, True
        n = len(self.labels)
        if len(x) % n == 0:  # interpolates (len n), or real and fake in one call (a multiple)
            return self.labels.repeat(len(x) // n), False
        raise PluginFailure(f"objective '{self.owner.name}' from {self.owner.origin}: its discriminator call on "
                            f"{len(x)} samples cannot be conditioned: this phase's labels are for batches of {n}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        labels, own = self._labels_of(x)
        out = self.discriminator(x, labels)
        if isinstance(out, tuple):
            scores, auxiliary = out
            if own:
                self.auxiliary.append(auxiliary)
            return scores
        return out

    def take_auxiliary(self) -> torch.Tensor | None:
        """The auxiliary losses of this phase's calls, summed (None where there were none)."""
        if not self.auxiliary:
            return None
        total = torch.stack([a.float() for a in self.auxiliary]).sum()
        self.auxiliary = []
        return total
