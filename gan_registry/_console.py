"""What every `gan` command shares: plugins loaded with their warnings shown on one line each.

Layer: front ends (docs/architecture.md).
"""
from __future__ import annotations

import warnings

import click


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"warning: {message}", err=True)


def registry():
    from .plugins import load_registry  # importlib.metadata, ~25 ms: `gan --help` loads this module

    warnings.showwarning = _show_warning
    return load_registry()
