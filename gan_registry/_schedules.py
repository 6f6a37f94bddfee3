"""Schedules: a numeric parameter that moves from a start value to an end value over a run, as R3GAN anneals its
learning rate, R1/R2 gamma, Adam beta2, generator-average half-life and augmentation strength.

Written `schedule(START, END[, SHAPE[, STEPS]])` wherever a number is expected (`-p objective.r1=schedule(0.05,
0.005)`, a TOML string, a component's suggestion). SHAPE is `cosine` (the default, R3GAN's half-cosine) or `linear`;
STEPS is the generator steps it takes to reach END, after which END holds. Without STEPS it spans the run's length
when it starts training (fixed then and checkpointed: a resumed run with more steps holds END). A value is a
function of the step alone, so a resumed run follows the same values as a straight one.

Layer: contracts (docs/architecture.md).
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

SHAPES = ("cosine", "linear")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_FORM = re.compile(rf"^\s*schedule\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*(?:,\s*(\w+)\s*(?:,\s*(\d+)\s*)?)?\)\s*$")
SYNTAX = "schedule(START, END[, cosine|linear[, STEPS]])"
MOVING_SLOTS = ("objective", "augment")
"""The `-p` groups whose float parameters the engine moves over a run (training.Trainer sets them each step);
others take their values once, when built, and refuse a schedule. `--ema-half-life` is a run setting that moves."""


class Schedule(float):
    """A float whose value is the start of its schedule: a parameter class checks it as it would a number (its
    `__post_init__` sees START; the engine checks END the same way), and the engine sets the current value on the
    parameters object before each step."""

    start: float
    end: float
    shape: str
    steps: int | None

    def __new__(cls, start: float, end: float, shape: str = "cosine", steps: int | None = None) -> "Schedule":
        for name, value in (("START", start), ("END", end)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{SYNTAX}: {name} must be a finite number, got {value!r}")
        if shape not in SHAPES:
            raise ValueError(f"{SYNTAX}: the shape is one of {', '.join(SHAPES)}, got {shape!r}")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ValueError(f"{SYNTAX}: STEPS must be a whole number of at least 1, got {steps!r}")
        made = super().__new__(cls, start)
        made.start, made.end, made.shape, made.steps = float(start), float(end), shape, steps
        return made

    def at(self, step: int, span: int) -> float:
        """The value at generator step `step` of a schedule spanning `span` steps (its own STEPS if it has them)."""
        done = min(max(step / max(self.steps or span, 1), 0.0), 1.0)
        if done == 1.0:
            return self.end  # exactly: a held end value is the one written
        moved = done if self.shape == "linear" else 0.5 * (1 - math.cos(math.pi * done))
        return self.start + moved * (self.end - self.start)

    def spanning(self, steps: int) -> "Schedule":
        return Schedule(self.start, self.end, self.shape, steps)

    def __str__(self) -> str:
        tail = f", {self.steps}" if self.steps is not None else ""
        return f"schedule({self.start:g}, {self.end:g}, {self.shape}{tail})"

    __repr__ = __str__

    def __reduce__(self) -> Any:  # copies and pickles keep the schedule, not just its start
        return Schedule, (self.start, self.end, self.shape, self.steps)


def parse(value: Any) -> Schedule | None:
    """The Schedule written in `value`, None where it is not one; ValueError for a malformed one."""
    if isinstance(value, Schedule):
        return value
    if not isinstance(value, str) or not value.strip().lower().startswith("schedule"):
        return None
    found = _FORM.match(value)
    if found is None:
        raise ValueError(f"expected {SYNTAX}, e.g. schedule(0.05, 0.005, cosine)")
    start, end, shape, steps = found.groups()
    return Schedule(float(start), float(end), shape or "cosine", int(steps) if steps else None)


def split_items(text: str) -> list[str]:
    """Comma-separated items of a tuple value, keeping the commas inside `schedule(...)` together."""
    items, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            items.append(current.strip())
            current = ""
            continue
        depth += (char == "(") - (char == ")")
        current += char
    items.append(current.strip())
    return items


def end_values(params: Any) -> dict[str, Any]:
    """{field: the value it ends at} for each scheduled field (a tuple's scheduled items included)."""
    return {name: ended(value) for name, value in scheduled(params).items()}


def ended(value: Any) -> Any:
    """A value as it stands at the end of its schedule(s): a Schedule's END, a tuple's items each so, else itself."""
    if isinstance(value, Schedule):
        return value.end
    if isinstance(value, tuple):
        return tuple(ended(v) for v in value)
    return value


def scheduled(params: Any) -> dict[str, Any]:
    """{field: its Schedule, or a tuple holding one} of a parameters object."""
    if params is None or not dataclasses.is_dataclass(params):
        return {}
    found = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if isinstance(value, Schedule) or (isinstance(value, tuple) and any(isinstance(v, Schedule) for v in value)):
            found[f.name] = value
    return found


def value_at(value: Any, step: int, span: int) -> Any:
    """A field's value at `step`: a Schedule's current value, a tuple with its scheduled items evaluated."""
    if isinstance(value, Schedule):
        return value.at(step, span)
    if isinstance(value, tuple):
        return tuple(v.at(step, span) if isinstance(v, Schedule) else v for v in value)
    return value
