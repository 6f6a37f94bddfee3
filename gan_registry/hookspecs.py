"""The hooks a gan-registry plugin may implement, one per hook name in the table of kinds.

An implementation declares the arguments it uses and receives just those, as pluggy calls hooks:
hooks may gain arguments in later versions without breaking existing plugins.

Layer: contracts (docs/architecture.md).
"""
import pluggy

from ._components import HOOKS, KIND_BY_NAME

hookspec = pluggy.HookspecMarker("gan_registry")
hookimpl = pluggy.HookimplMarker("gan_registry")


def _joined(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _make_spec(hook: str, kinds: tuple[str, ...]):
    def spec(register):
        pass

    listed = "\n".join(f"- {KIND_BY_NAME[k].plural} (`{KIND_BY_NAME[k].component.__name__}`):"
                       f" {KIND_BY_NAME[k].summary}." for k in kinds)
    spec.__name__ = spec.__qualname__ = hook
    spec.__module__ = __name__
    spec.__doc__ = (
        f"Register {_joined([KIND_BY_NAME[k].plural for k in kinds])}.\n\n{listed}\n\n"
        "Args:\n    register: call `register(component)` once per component; it checks the component's kind"
        " and records which plugin it came from."
    )
    return hookspec(spec)


for _hook, _kinds in HOOKS.items():
    globals()[_hook] = _make_spec(_hook, _kinds)
del _hook, _kinds
