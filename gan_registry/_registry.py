"""The registry of components, filled by plugins.

Two plugins may register the same kind and name: both stay registered, the bare name is then refused
with both named, and each is reachable as `NAME@DISTRIBUTION` (or `NAME@PLUGIN` for in-process plugins).
Load order never decides which one a run gets.

Layer: registry (docs/architecture.md).
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from ._components import KINDS, Component
from .errors import AmbiguousComponentError, DuplicateComponentError, UnknownComponentError


@dataclass
class PluginInfo:
    """One loaded (or failed, or blocked) plugin, for `gan plugins`."""

    name: str
    distribution: str | None = None
    version: str | None = None
    status: str = "ok"  # ok | empty | broken | blocked, or core for the core's own plugin
    error: str | None = None
    location: str | None = None
    """Where the distribution's metadata lies: two distributions pip takes for one differ here."""
    notes: list[str] = field(default_factory=list)
    """Problems that do not stop the plugin from loading: a hook-like function without @hookimpl, a clash."""
    components: list[Component] = field(default_factory=list)

    def as_dict(self) -> dict:
        registered: dict[str, list[str]] = {}
        for c in self.components:
            registered.setdefault(c.kind, []).append(c.name)
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "location": self.location,
            "status": self.status,
            "error": self.error,
            "notes": list(self.notes),
            "registers": registered,
        }


def qualified_name(component: Component) -> str:
    """`name@distribution` (or `name@plugin`): the name that stays unambiguous when another plugin clashes.

    `Registry.qualified` also tells apart two plugins of one distribution.
    """
    origin = component.origin
    where = (origin.distribution or origin.plugin) if origin else None
    return f"{component.name}@{where}" if where else component.name


def _normal(name: str | None) -> str:
    """Distribution names compare as pip compares them: case, '-', '_' and '.' alike."""
    return re.sub(r"[-_.]+", "-", name or "").lower()


class Registry:
    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, list[Component]]] = {k.name: {} for k in KINDS}
        self.plugins: list[PluginInfo] = []
        """The plugins found (loaded, broken or blocked); the core's own is `core`."""
        self.core: PluginInfo | None = None

    def add_all(self, components: list[Component]) -> None:
        """Add one plugin's components; a name it registers twice for one kind is its own mistake."""
        seen: set[tuple[str, str]] = set()
        for c in components:
            if (c.kind, c.name) in seen:
                raise DuplicateComponentError(f"{c.kind} '{c.name}' is registered twice by {c.origin}")
            seen.add((c.kind, c.name))
        for c in components:
            self._by_kind[c.kind].setdefault(c.name, []).append(c)

    def get(self, kind: str, name: str) -> Component:
        """The component of `kind` called `name` (or `name@distribution`)."""
        base, at, where = name.partition("@")
        found = self._by_kind[kind].get(base, [])
        if at:
            chosen = self._from(found, where)
            if len(chosen) == 1:
                return chosen[0]
            if found:
                raise (AmbiguousComponentError if chosen else UnknownComponentError)(
                    f"{'more than one' if chosen else 'no'} {kind} '{base}' from '{where}' (it is registered as"
                    f" {', '.join(self.qualified(c) for c in found)})"
                )
        elif len(found) == 1:
            return found[0]
        elif len(found) > 1:
            raise AmbiguousComponentError(
                f"{kind} '{base}' is registered by {len(found)} plugins: "
                f"{', '.join(str(c.origin) for c in found)}; choose one with "
                f"{' or '.join(self.qualified(c) for c in found)}"
            )
        known = sorted(self._by_kind[kind])
        close = difflib.get_close_matches(base, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        available = f" (available: {', '.join(known)})" if known else " (none installed)"
        raise UnknownComponentError(f"unknown {kind} '{name}'{hint}{available}")

    @staticmethod
    def _from(found: list[Component], where: str) -> list[Component]:
        """Those of `found` whose plugin is `where`, or whose distribution is `where` as pip spells it: all of
        them, so that an entry point named like another's distribution makes the name ambiguous, never its own."""
        return [c for c in found if c.origin and (c.origin.plugin == where or (
            c.origin.distribution and _normal(c.origin.distribution) == _normal(where)))]

    def qualified(self, component: Component) -> str:
        """The name that picks exactly this component: `name@distribution`, else `name@plugin` (one distribution
        registering the name from two of its plugins); where neither does, the distribution's, which is refused
        with both named."""
        if not component.origin:
            return component.name
        group = self._by_kind[component.kind].get(component.name, [])
        names = [where for where in (component.origin.distribution, component.origin.plugin) if where]
        for where in names:
            if self._from(group, where) == [component]:
                return f"{component.name}@{where}"
        return f"{component.name}@{names[0]}"

    def names(self, kind: str) -> list[str]:
        return sorted(self._by_kind[kind])

    def components(self, kind: str | None = None) -> list[Component]:
        """Every registered component (each of a clashing pair too), by kind in table order, then name."""
        kinds = [kind] if kind else list(self._by_kind)
        return [c for k in kinds for n in sorted(self._by_kind[k]) for c in self._by_kind[k][n]]

    def clashes(self) -> list[list[Component]]:
        """The groups of components of one kind and name registered by more than one plugin."""
        return [group for by_name in self._by_kind.values() for group in by_name.values() if len(group) > 1]

    def is_clashing(self, component: Component) -> bool:
        return len(self._by_kind[component.kind].get(component.name, [])) > 1

    def find(self, name: str) -> list[Component]:
        """Every component of any kind with this name (or `name@distribution`)."""
        base, at, where = name.partition("@")
        return [c for by_name in self._by_kind.values() for c in (self._from(by_name.get(base, []), where) if at
                                                                    else by_name.get(base, []))]
