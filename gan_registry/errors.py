"""Errors that are the user's to fix: the CLI prints them on one line and exits 2."""


class UserError(Exception):
    """A mistake in the user's input; shown without a traceback."""


class UnknownComponentError(UserError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ParameterError(UserError):
    pass


class IncompatibleError(UserError):
    """Raised by a factory that cannot build for the requested combination."""


class DuplicateComponentError(Exception):
    pass


class PluginLoadError(Exception):
    """A plugin failed to load while GAN_REGISTRY_STRICT_PLUGINS is set."""


class CheckpointError(UserError):
    pass


class PluginWarning(UserWarning):
    pass


class Interrupted(Exception):
    """Training stopped on Ctrl-C after writing a checkpoint."""

    def __init__(self, step: int, path) -> None:
        super().__init__(f"interrupted at step {step}; checkpoint written to {path}")
        self.step, self.path = step, path
