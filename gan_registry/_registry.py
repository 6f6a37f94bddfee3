"""The registry of components, filled by plugins."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ._components import COMPONENT_TYPES, Component
from .errors import DuplicateComponentError, UnknownComponentError


@dataclass
class PluginInfo:
    """One loaded (or failed, or blocked) plugin, for `gan plugins`."""

    name: str
    distribution: str | None = None
    version: str | None = None
    status: str = "ok"  # ok | broken | blocked
    error: str | None = None
    components: list[Component] = field(default_factory=list)

    def as_dict(self) -> dict:
        registered: dict[str, list[str]] = {}
        for c in self.components:
            registered.setdefault(c.kind, []).append(c.name)
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "registers": registered,
        }


class Registry:
    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, Component]] = {kind: {} for kind in COMPONENT_TYPES}
        self.plugins: list[PluginInfo] = []

    def add_all(self, components: list[Component]) -> None:
        """Add a plugin's components together: all of them, or none if one clashes."""
        seen: dict[tuple[str, str], Component] = {}
        for c in components:
            key = (c.kind, c.name)
            existing = self._by_kind[c.kind].get(c.name) or seen.get(key)
            if existing is not None:
                raise DuplicateComponentError(
                    f"{c.kind} '{c.name}' from {c.origin} is already registered by {existing.origin}"
                )
            seen[key] = c
        for c in components:
            self._by_kind[c.kind][c.name] = c

    def get(self, kind: str, name: str) -> Component:
        found = self._by_kind[kind].get(name)
        if found is not None:
            return found
        known = sorted(self._by_kind[kind])
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        available = f" (available: {', '.join(known)})" if known else " (none installed)"
        raise UnknownComponentError(f"unknown {kind} '{name}'{hint}{available}")

    def names(self, kind: str) -> list[str]:
        return sorted(self._by_kind[kind])

    def components(self, kind: str | None = None) -> list[Component]:
        kinds = [kind] if kind else list(self._by_kind)
        return [self._by_kind[k][n] for k in kinds for n in sorted(self._by_kind[k])]

    def find(self, name: str) -> list[Component]:
        """Every component of any kind with this name."""
        return [by_name[name] for by_name in self._by_kind.values() if name in by_name]
