"""Typed component parameters: parsing `-p KIND.NAME=VALUE` strings and TOML values.

Layer: contracts (docs/architecture.md).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Callable, Literal

from . import _schedules
from .errors import ParameterError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def fields_of(params_type: type | None) -> dict[str, dataclasses.Field]:
    if params_type is None:
        return {}
    return {f.name: f for f in dataclasses.fields(params_type)}


def field_types(params_type: type | None) -> dict[str, Any]:
    return typing.get_type_hints(params_type) if params_type is not None else {}


def type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "{" + "|".join(str(a) for a in args) + "}"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is tuple:
        return "tuple[" + ", ".join(type_name(a) for a in args) + "]"
    return "none" if tp is type(None) else getattr(tp, "__name__", str(tp))


def convert(value: Any, tp: Any) -> Any:
    """Convert a string (from the command line) or a TOML value to `tp`, or raise ValueError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() == "none")):
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for arg in options:
            try:
                return convert(value, arg)
            except ValueError as error:
                errors.append(error)
        if len(options) == 1:  # X | None (a Union of one type is that type): say what the value itself should be
            raise ValueError(f"{errors[0]}, or none")
        raise ValueError(f"expected {type_name(tp)}")
    if origin is Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise ValueError(f"expected one of {', '.join(map(str, args))}")
    if origin is tuple:
        if not isinstance(value, (str, list, tuple)):
            raise ValueError(f"expected {type_name(tp)}")
        items = _schedules.split_items(value) if isinstance(value, str) else list(value)
        inner = list(args)
        if len(inner) == 2 and inner[1] is Ellipsis:
            inner = [inner[0]] * len(items)
        if len(items) != len(inner):
            raise ValueError(f"expected {len(inner)} comma-separated values")
        return tuple(convert(v, t) for v, t in zip(items, inner))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError("expected true or false")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (
                isinstance(value, float) and not value.is_integer()):
            raise ValueError("expected an integer")
        if not isinstance(value, str):
            return int(value)
        try:
            return int(value, 0)
        except ValueError:
            pass
        try:  # numbers as written: 1e3, 2.0
            number = float(value)
        except ValueError:
            raise ValueError("expected an integer") from None
        if not number.is_integer():
            raise ValueError("expected an integer")
        return int(number)
    if tp is float:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        schedule = _schedules.parse(value)  # a number that moves over the run
        if schedule is not None:
            return schedule
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError("expected a number") from None
        if not math.isfinite(number):  # every rate, weight and size is finite: inf or nan only diverges later
            raise ValueError("expected a finite number")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    raise ValueError(f"unsupported parameter type {type_name(tp)}")


def build(params_type: type | None, values: dict[str, Any], owner: str, *, moves: bool = False) -> Any:
    """Instantiate `params_type` with `values` (strings or TOML values) converted by declared type; `moves`: the
    engine sets scheduled values on these parameters as a run trains (`_schedules.MOVING_SLOTS`), so they may be
    schedules."""
    known = fields_of(params_type)
    types_ = field_types(params_type)
    converted = {}
    for key, raw in values.items():
        if key not in known:
            valid = ", ".join(known) if known else "none"
            raise ParameterError(f"{owner} has no parameter '{key}' (valid: {valid})")
        try:
            converted[key] = convert(raw, types_[key])
        except ValueError as error:
            raise ParameterError(f"{owner} parameter '{key}'={raw!r}: {error}") from None
    if params_type is None:
        return None
    try:
        built = params_type(**converted)
    except (ValueError, TypeError) as error:  # a __post_init__ check of the plugin's own
        raise ParameterError(f"{owner}: {error}") from None
    ends = _schedules.end_values(built)
    if ends and not moves:
        raise ParameterError(f"{owner} parameter '{next(iter(ends))}': a schedule moves only objective and augment "
                             f"parameters (and --ema-half-life); {owner} takes its values once, when it is built")
    if ends:  # the plugin's checks see a schedule's start; its end must pass them too
        try:
            dataclasses.replace(built, **ends)
        except (ValueError, TypeError) as error:
            raise ParameterError(f"{owner}, at the end of a schedule: {error}") from None
    return built


def describe(params_type: type | None) -> list[dict[str, Any]]:
    """One dict per parameter: name, type, default, help."""
    types_ = field_types(params_type)
    rows = []
    for name, f in fields_of(params_type).items():
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rows.append(
            {"name": name, "type": type_name(types_[name]), "default": default, "help": f.metadata.get("help", "")}
        )
    return rows


def as_dict(params: Any) -> dict[str, Any]:
    """The parameters as plain values (for config.json); a schedule as it is written, e.g. 'schedule(0.1, 0.01,
    cosine)'."""
    if params is None:
        return {}
    return {key: _written(value) for key, value in dataclasses.asdict(params).items()}


def _written(value: Any) -> Any:
    if isinstance(value, _schedules.Schedule):
        return str(value)
    if isinstance(value, tuple) and any(isinstance(v, _schedules.Schedule) for v in value):
        return ", ".join(str(v) if isinstance(v, _schedules.Schedule) else f"{v:g}" if isinstance(v, float) else str(v)
                         for v in value)
    return value


def spread_params(values: dict[str, Any], components: dict[str, Any], unknown: Callable[[str, str], str]
                  ) -> dict[str, dict[str, Any]]:
    """`-p GROUP.X=V` sets X on every one of `components` (by key) that declares X.

    An X that none declares is refused with `unknown(X, the valid names)`.
    """
    spread: dict[str, dict[str, Any]] = {key: {} for key in components}
    for name, value in values.items():
        owners = [key for key, c in components.items() if name in fields_of(c.params)]
        if not owners:
            valid = sorted({k for c in components.values() for k in fields_of(c.params)})
            raise ParameterError(unknown(name, ", ".join(valid) or "none"))
        for key in owners:
            spread[key][name] = value
    return spread


def in_group(group: str) -> Callable[[str, str], str]:
    """The refusal of a parameter that no `group` (callback, metric) of the run declares."""
    return lambda name, valid: f"no {group} of this run has a parameter '{name}' (valid: {valid})"
