"""Typed parameters: values from the command line and from TOML, converted by declared type."""
from dataclasses import dataclass, field
from typing import Literal

import pytest

from gan_registry import params
from gan_registry.errors import ParameterError


@dataclass
class Example:
    hidden: int = field(default=256, metadata={"help": "width"})
    rate: float = 1e-3
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    betas: tuple[float, float] = (0.5, 0.999)
    limit: float | None = None


def test_strings_are_converted_by_declared_type():
    built = params.build(Example, {"hidden": "512", "rate": "2e-4", "flag": "yes", "mode": "b",
                                   "betas": "0,0.9", "limit": "none"}, "x")
    assert built == Example(512, 2e-4, True, "b", (0.0, 0.9), None)


def test_toml_values_are_checked_too():
    assert params.build(Example, {"rate": 1, "betas": [0.1, 0.2]}, "x").rate == 1.0
    with pytest.raises(ParameterError, match="expected an integer"):
        params.build(Example, {"hidden": 2.5}, "x")


@pytest.mark.parametrize(
    "values, message",
    [
        ({"hiden": "3"}, r"has no parameter 'hiden' \(valid: hidden, rate, flag, mode, betas, limit\)"),
        ({"hidden": "lots"}, "parameter 'hidden'='lots'"),
        ({"mode": "c"}, "expected one of a, b"),
        ({"flag": "maybe"}, "expected true or false"),
        ({"betas": "0.5"}, "expected 2 comma-separated values"),
    ],
)
def test_bad_values_say_what_is_valid(values, message):
    with pytest.raises(ParameterError, match=message):
        params.build(Example, values, "thing 'x'")


def test_describe_lists_type_default_and_help():
    rows = {r["name"]: r for r in params.describe(Example)}
    assert rows["hidden"] == {"name": "hidden", "type": "int", "default": 256, "help": "width"}
    assert rows["mode"]["type"] == "{a|b}"
    assert rows["limit"]["type"] == "float | none"
