"""Finding plugins through entry points and asking them to register their components."""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib.metadata
import os
import warnings
from typing import Iterable, Iterator

import pluggy

from . import hookspecs
from ._components import HOOKS, Component, Origin
from ._registry import PluginInfo, Registry
from .errors import PluginFailure, PluginLoadError, PluginWarning, RunStopped, UserError

ENTRY_POINT_GROUP = "gan_registry"
BLOCK_ENV = "GAN_REGISTRY_BLOCK_PLUGINS"
STRICT_ENV = "GAN_REGISTRY_STRICT_PLUGINS"
DEBUG_ENV = "GAN_REGISTRY_DEBUG"
"""Set by `gan --debug`: a plugin's failure shows its traceback."""

def _blocked_names(env) -> set[str]:
    return {n.strip() for n in env.get(BLOCK_ENV, "").split(",") if n.strip()}


def _on(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no")


def _strict(env) -> bool:
    return _on(env.get(STRICT_ENV))


def _fail(info: PluginInfo, error: BaseException, strict: bool) -> None:
    info.status = "broken"
    info.error = f"{type(error).__name__}: {error}"
    message = f"plugin '{info.name}'"
    if info.distribution:
        message += f" ({info.distribution} {info.version})"
    message += f" failed to load: {info.error}"
    if strict:
        raise PluginLoadError(f"{message} (GAN_REGISTRY_STRICT_PLUGINS is set)") from error
    warnings.warn(f"{message}; it is skipped", PluginWarning, stacklevel=2)


class PluginContractError(Exception):
    """A plugin module that does not follow the hook contract (an unknown hook name, say)."""


def _check_hooks(pm: pluggy.PluginManager, plugin) -> list[str]:
    """Refuse hook implementations with no such hook; return notes on hook-like functions left unmarked."""
    unknown = [caller.name for caller in pm.get_hookcallers(plugin) or () if not caller.has_spec()]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(HOOKS), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise PluginContractError(
            f"'{unknown[0]}' is not a gan-registry hook{hint} (hooks: {', '.join(HOOKS)})"
        )
    notes = []
    for attr in dir(plugin):
        function = getattr(plugin, attr, None)
        if not callable(function) or attr.startswith("_") or pm.parse_hookimpl_opts(plugin, attr) is not None:
            continue
        close = difflib.get_close_matches(attr, list(HOOKS), n=1, cutoff=0.8)
        if close and getattr(function, "__module__", None) == getattr(plugin, "__name__", None):
            notes.append(f"{attr}() is not marked @hookimpl, so it is never called"
                         f"{'' if close[0] == attr else f' (and the hook is {close[0]})'}")
    return notes


def _collect(pm: pluggy.PluginManager, plugin, info: PluginInfo) -> list[Component]:
    """Run the plugin's own hook implementations, each with the arguments it declares.

    Each plugin is called on its own, so an error is charged to the plugin that raised it.
    """
    origin = Origin(info.name, info.distribution, info.version)
    staged: list[Component] = []
    for hook_name, kinds in HOOKS.items():

        def register(component: Component, _hook=hook_name, _kinds=kinds) -> None:
            if not isinstance(component, Component) or component.kind not in _kinds:
                raise TypeError(f"{_hook} can register {', '.join(_kinds)}, not {component!r}")
            staged.append(dataclasses.replace(component, origin=origin))

        arguments = {"register": register}
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin is plugin:
                impl.function(**{name: arguments[name] for name in impl.argnames})
    return staged


def _note(info: PluginInfo, strict: bool) -> None:
    """Warn about what loaded but looks wrong; in strict mode it is an error."""
    if not info.notes:
        return
    message = f"plugin '{info.name}'" + (f" ({info.distribution} {info.version})" if info.distribution else "")
    message += ": " + "; ".join(info.notes)
    if strict:
        raise PluginLoadError(f"{message} (GAN_REGISTRY_STRICT_PLUGINS is set)")
    warnings.warn(message, PluginWarning, stacklevel=3)


@contextlib.contextmanager
def blame(component: Component, action: str, env=None) -> Iterator[None]:
    """Charge an unexpected error inside a plugin's code to that plugin, in one line.

    User errors (IncompatibleError and the like) pass through; with GAN_REGISTRY_STRICT_PLUGINS
    the original exception and its traceback do too, for the plugin's author.
    """
    try:
        yield
    except (UserError, RunStopped, PluginFailure):
        raise
    except Exception as error:
        env = os.environ if env is None else env
        if _strict(env) or _on(env.get(DEBUG_ENV)):
            raise
        detail = " ".join(str(error).split()) or "(no message)"
        raise PluginFailure(
            f"{component.kind} '{component.name}' from {component.origin or 'an unknown plugin'} failed while"
            f" {action}: {type(error).__name__}: {detail}. This is a bug in that plugin: report it to its authors"
            f" (`gan --debug ...` shows the traceback)"
        ) from error


def load_registry(
    extra_plugins: Iterable[tuple[str, object]] = (),
    *,
    entry_points: bool = True,
    env=None,
) -> Registry:
    """Load every installed plugin (and `extra_plugins`, as (name, module) pairs) into a Registry."""
    env = os.environ if env is None else env
    strict, blocked = _strict(env), _blocked_names(env)
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    candidates: list[tuple[PluginInfo, object]] = []

    if entry_points:
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(ep.name, dist.name if dist else None, dist.version if dist else None)
            registry.plugins.append(info)
            if ep.name in blocked or info.distribution in blocked:
                info.status = "blocked"
                continue
            try:
                candidates.append((info, ep.load()))
            except Exception as error:  # a broken plugin must not take the others down
                _fail(info, error, strict)
    for name, module in extra_plugins:
        if any(module is loaded for _, loaded in candidates):
            continue  # already loaded through its entry point
        info = PluginInfo(name)
        registry.plugins.append(info)
        candidates.append((info, module))

    from . import __version__, _callbacks

    core = PluginInfo("gan-registry", "gan-registry", __version__, status="core")
    registry.core = core
    for info, module in [(core, _callbacks), *candidates]:
        try:
            pm.register(module, name=info.name)
            notes = _check_hooks(pm, module)
            components = _collect(pm, module, info)
            registry.add_all(components)
        except Exception as error:
            if pm.is_registered(module):
                pm.unregister(module)
            _fail(info, error, strict)
            continue
        info.components = components
        info.notes = notes
        if not components:
            info.status = "empty"
            hooked = bool(pm.get_hookcallers(module))
            info.notes.append("it registers no component" + ("" if hooked else " (it has no @hookimpl function)"))
        _note(info, strict)
    for group in registry.clashes():
        for component in group:
            others = ", ".join(str(c.origin) for c in group if c is not component)
            info = next((p for p in registry.plugins if p.name == component.origin.plugin), None)
            if info is not None:
                info.notes.append(f"{component.kind} '{component.name}' is also registered by {others}: "
                                  f"runs must name it {registry.qualified(component)}")
    return registry
