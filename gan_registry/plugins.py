"""Finding plugins through entry points and asking them to register their components.

Layer: registry (docs/architecture.md).
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib
import importlib.metadata
import os
import signal
import threading
import warnings
from typing import Iterable, Iterator

import pluggy

from . import hookspecs
from ._components import HOOKS, Component, Origin
from ._registry import PluginInfo, Registry, _normal
from ._version import __version__
from .errors import PluginContractError, PluginFailure, PluginLoadError, PluginWarning, RunStopped, TooLarge, UserError

ENTRY_POINT_GROUP = "gan_registry"
BLOCK_ENV = "GAN_REGISTRY_BLOCK_PLUGINS"
STRICT_ENV = "GAN_REGISTRY_STRICT_PLUGINS"
DEBUG_ENV = "GAN_REGISTRY_DEBUG"
"""Set by `gan --debug`: a plugin's failure shows its traceback."""
CORE_DUTIES = "gan_registry._callbacks"
"""The module holding the core's built-in callbacks, registered first as the plugin `gan-registry`."""

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


_TOO_LARGE = ("can't allocate memory", "out of memory", "not enough memory", "overflow when unpacking long",
              "storage size calculation overflowed", "trying to create tensor with negative dimension")
"""What torch says when a size it was asked for cannot be had: the sizes are the user's, not a plugin's bug."""


def _too_large(error: BaseException) -> bool:
    if isinstance(error, (MemoryError, OverflowError)):  # torch.OutOfMemoryError is a RuntimeError saying so
        return True
    text = str(error).lower()
    return isinstance(error, (RuntimeError, TypeError, ValueError)) and any(words in text for words in _TOO_LARGE)


def _first_words(error: BaseException) -> str:
    """An error's message without the C++ stack torch sometimes appends."""
    text = " ".join(str(error).split()) or "(no message)"
    return text.split(" Exception raised from ")[0].split(" frame #0")[0][:300]


@contextlib.contextmanager
def blame(component: Component, action: str, env=None, asked: str = "") -> Iterator[None]:
    """Charge an unexpected error inside a plugin's code to that plugin, in one line.

    User errors (IncompatibleError and the like) pass through, and so does a size that cannot be had (memory, an
    overflow): that is the sizes asked for (`asked` names those the user set), not a bug. With
    GAN_REGISTRY_STRICT_PLUGINS the original exception and its traceback do too, for the plugin's author.
    """
    try:
        yield
    except (UserError, RunStopped, PluginFailure):
        raise
    except Exception as error:
        env = os.environ if env is None else env
        if _strict(env) or _on(env.get(DEBUG_ENV)):
            raise
        detail = _first_words(error)
        if _too_large(error):
            raise TooLarge(
                f"{component.kind} '{component.name}' asked for more than this machine can hold while {action}"
                f"{f' ({asked})' if asked else ''}: {type(error).__name__}: {detail}; set smaller sizes or a smaller"
                " --batch-size") from None
        raise PluginFailure(
            f"{component.kind} '{component.name}' from {component.origin or 'an unknown plugin'} failed while"
            f" {action}: {type(error).__name__}: {detail}. This is a bug in that plugin: report it to its authors"
            f" (`gan --debug ...` shows the traceback)"
        ) from error


def _location(dist) -> str | None:
    """Where a distribution's metadata lies: what tells apart two distributions pip would take for one."""
    path = getattr(dist, "_path", None)
    return str(path) if path is not None else None


def _installed_entry_points() -> list[tuple[object, importlib.metadata.EntryPoint]]:
    """Every (distribution, entry point) of the group, over every distribution on sys.path.

    `importlib.metadata.entry_points()` keeps only the first distribution of each normalised name, so a package
    on PYTHONPATH called `Gan_Registry.Objectives` would hide gan-registry-objectives. Here both are kept; copies of
    one distribution (an egg-info beside its dist-info) with the same entry points count once.
    """
    seen: set[tuple[str, tuple]] = set()
    found = []
    for dist in importlib.metadata.distributions():
        points = sorted(dist.entry_points.select(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
        if not points:
            continue
        key = (dist.metadata["Name"] or "", tuple((e.name, e.value) for e in points))
        if key in seen:
            continue
        seen.add(key)
        found.extend((dist, ep) for ep in points)
    return sorted(found, key=lambda pair: (pair[1].name, _normal(pair[0].metadata["Name"])))


def _same_name_notes(plugins: list[PluginInfo]) -> None:
    """Two distributions that pip takes for one: both are reported, and neither picks the other's components."""
    by_name: dict[str, list[PluginInfo]] = {}
    for info in plugins:
        if info.distribution:
            by_name.setdefault(_normal(info.distribution), []).append(info)
    for infos in by_name.values():
        places = sorted({(i.distribution, i.version, i.location or "?") for i in infos})
        if len(places) < 2:
            continue
        note = (f"distributions {' and '.join(f'{d} {v} (at {where})' for d, v, where in places)} have one name to"
                " pip: neither pip nor NAME@DISTRIBUTION can tell them apart, so a name both register is refused;"
                " uninstall or block (GAN_REGISTRY_BLOCK_PLUGINS) the one you did not mean to install")
        for info in infos:
            info.notes.append(note)
        warnings.warn(note, PluginWarning, stacklevel=3)
    for info in plugins:  # an entry point named like another distribution: NAME@THAT-NAME then picks neither
        named = by_name.get(_normal(info.name), [])
        if info.status != "core" and any(_normal(other.distribution) != _normal(info.distribution) for other in named):
            note = (f"plugin '{info.name}' ({info.distribution} {info.version}, at {info.location}) is named like the"
                    f" distribution {named[0].distribution}: NAME@{info.name} is refused for a name both register")
            info.notes.append(note)
            warnings.warn(note, PluginWarning, stacklevel=3)


class _UserInterrupt:
    """Tells a Ctrl-C the user pressed while plugins import from a KeyboardInterrupt a plugin raises itself."""

    def __init__(self) -> None:
        self.pressed = False
        self._previous = None

    def __enter__(self) -> "_UserInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.pressed = True
        raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _contained(error: BaseException, during: str) -> BaseException:
    """What a plugin raised, as an error to report: exiting or interrupting while it loads is the plugin's bug."""
    if isinstance(error, Exception):
        return error
    if isinstance(error, SystemExit):
        failure = PluginContractError(f"it called sys.exit({error.code!r}) while {during}")
    else:
        failure = PluginContractError(f"it raised {type(error).__name__} while {during}")
    failure.__cause__ = error  # the traceback strict mode shows
    return failure


def _register(pm: pluggy.PluginManager, registry: Registry, index: int, info: PluginInfo, module: object,
              strict: bool, interrupt: _UserInterrupt) -> None:
    """Call one plugin's hooks and add what it registers; whatever it raises marks it broken, and only it."""
    if pm.is_registered(module):  # two entry points naming one module, or one naming the core's own
        _fail(info, PluginContractError(f"its module {getattr(module, '__name__', module)} is already loaded as"
                                        " another plugin"), strict)
        return
    try:
        # pluggy's own names must be unique: entry-point names are not (and one may be the core's)
        pm.register(module, name=f"{index}:{info.name}")
        notes = _check_hooks(pm, module)
        components = _collect(pm, module, info)
        registry.add_all(components)
    except BaseException as error:
        if interrupt.pressed:
            raise
        if pm.is_registered(module):
            pm.unregister(module)
        _fail(info, _contained(error, "registering its components"), strict)
        return
    info.components = components
    info.notes = notes
    if not components:
        info.status = "empty"
        hooked = bool(pm.get_hookcallers(module))
        info.notes.append("it registers no component" + ("" if hooked else " (it has no @hookimpl function)"))
    _note(info, strict)


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
        with _UserInterrupt() as interrupt:
            for dist, ep in _installed_entry_points():
                info = PluginInfo(ep.name, dist.metadata["Name"], dist.version, location=_location(dist))
                registry.plugins.append(info)
                if ep.name in blocked or info.distribution in blocked:
                    info.status = "blocked"
                    continue
                try:
                    candidates.append((info, ep.load()))
                except BaseException as error:  # a broken plugin must not take the others, or the command, down
                    if interrupt.pressed:
                        raise
                    _fail(info, _contained(error, "being imported"), strict)
    for name, module in extra_plugins:
        if any(module is loaded for _, loaded in candidates):
            continue  # already loaded through its entry point
        info = PluginInfo(name)
        registry.plugins.append(info)
        candidates.append((info, module))

    # The core's own duties (checkpoints, samples, the log, evaluation, ...) are loaded by name, as datasette and
    # llm load their default plugins: loading plugins does not import the engine they belong to.
    duties = importlib.import_module(CORE_DUTIES)
    core = PluginInfo("gan-registry", "gan-registry", __version__, status="core",
                      location=os.path.dirname(duties.__file__))
    registry.core = core
    with _UserInterrupt() as interrupt:
        for index, (info, module) in enumerate([(core, duties), *candidates]):
            _register(pm, registry, index, info, module, strict, interrupt)
    _same_name_notes([core, *registry.plugins])
    for group in registry.clashes():
        for component in group:
            others = ", ".join(str(c.origin) for c in group if c is not component)
            info = next((p for p in registry.plugins if p.name == component.origin.plugin), None)
            if info is not None:
                info.notes.append(f"{component.kind} '{component.name}' is also registered by {others}: "
                                  f"runs must name it {registry.qualified(component)}")
    return registry
