"""Finding plugins through entry points and asking them to register their components."""
from __future__ import annotations

import contextlib
import importlib.metadata
import os
import warnings
from typing import Iterable, Iterator

import pluggy

from . import hookspecs
from ._components import Component, Origin
from ._registry import PluginInfo, Registry
from .errors import PluginFailure, PluginLoadError, PluginWarning, RunStopped, UserError

ENTRY_POINT_GROUP = "gan_registry"
BLOCK_ENV = "GAN_REGISTRY_BLOCK_PLUGINS"
STRICT_ENV = "GAN_REGISTRY_STRICT_PLUGINS"

# hook name -> component kinds that hook may register
HOOK_KINDS = {
    "register_architectures": ("architecture", "generator", "discriminator", "encoder"),
    "register_objectives": ("objective",),
    "register_datasets": ("dataset",),
    "register_metrics": ("metric",),
}


def _blocked_names(env) -> set[str]:
    return {n.strip() for n in env.get(BLOCK_ENV, "").split(",") if n.strip()}


def _strict(env) -> bool:
    return env.get(STRICT_ENV, "").strip().lower() not in ("", "0", "false", "no")


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


def _collect(pm: pluggy.PluginManager, plugin, info: PluginInfo) -> list[Component]:
    """Run the plugin's own hook implementations with a register callback that checks and stamps.

    Each plugin is called on its own, so an error is charged to the plugin that raised it.
    """
    origin = Origin(info.name, info.distribution, info.version)
    staged: list[Component] = []
    for hook_name, kinds in HOOK_KINDS.items():

        def register(component: Component, _hook=hook_name, _kinds=kinds) -> None:
            if not isinstance(component, Component) or component.kind not in _kinds:
                raise TypeError(f"{_hook} can register {', '.join(_kinds)}, not {component!r}")
            object.__setattr__(component, "origin", origin)
            staged.append(component)

        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin is plugin:
                impl.function(**{arg: register for arg in impl.argnames})
    return staged


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
        if _strict(os.environ if env is None else env):
            raise
        detail = " ".join(str(error).split()) or "(no message)"
        raise PluginFailure(
            f"{component.kind} '{component.name}' from {component.origin or 'an unknown plugin'} failed while"
            f" {action}: {type(error).__name__}: {detail}. This is a bug in that plugin: report it to its authors"
            f" ({STRICT_ENV}=1 shows the traceback)"
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
        info = PluginInfo(name)
        registry.plugins.append(info)
        candidates.append((info, module))

    for info, module in candidates:
        try:
            pm.register(module, name=info.name)
            components = _collect(pm, module, info)
            registry.add_all(components)
        except Exception as error:
            if pm.is_registered(module):
                pm.unregister(module)
            _fail(info, error, strict)
            continue
        info.components = components
    return registry
