"""The hooks a gan-registry plugin may implement.

Each hook receives a `register` callback; call it once per component. Hooks only ever
gain arguments, never lose them, so existing plugins keep working.
"""
import pluggy

hookspec = pluggy.HookspecMarker("gan_registry")
hookimpl = pluggy.HookimplMarker("gan_registry")


@hookspec
def register_architectures(register):
    """Register generators, discriminators, encoders and architecture presets pairing them."""


@hookspec
def register_objectives(register):
    """Register objectives: losses, optimisers and their schedule."""


@hookspec
def register_datasets(register):
    """Register datasets: sample shape, value range and a loader."""


@hookspec
def register_metrics(register):
    """Register metrics that evaluate a run's samples (`gan eval`)."""
