"""Every exception class the core defines, each exported from `gan_registry`. A `UserError` is the user's to fix:
the CLI prints it on one line and exits 2. A `RunStopped` ends a run early with its own exit code.

Layer: contracts (docs/architecture.md).
"""
import signal

STOP_EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
"""How a run stopped by a signal exits (`Interrupted.exit_code`, the data loader's workers): the shell's 128 + signal
number; SIGTERM is what schedulers send before a kill."""


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


class PluginFailure(Exception):
    """A plugin's code raised where it should have built or computed something: its bug, not the user's."""


class CheckpointError(UserError):
    pass


class PluginWarning(UserWarning):
    pass


class RunStopped(Exception):
    """Training stopped before its end; the CLI prints the message on one line and exits `exit_code`."""

    exit_code = 1


class Interrupted(RunStopped):
    """Training stopped on SIGINT or SIGTERM after writing a checkpoint of the step reached."""

    def __init__(self, step: int, path, signal_name: str = "SIGINT", exit_code: int = 130) -> None:
        super().__init__(f"stopped by {signal_name} at step {step}; checkpoint written to {path}")
        self.step, self.path, self.exit_code = step, path, exit_code


class Diverged(RunStopped):
    """A loss or weight became NaN or infinite; the last good checkpoint is left as it was."""

    exit_code = 3


class WriteError(RunStopped):
    """A checkpoint or sample grid could not be written (a full disk); the previous checkpoint is kept."""


class LostProcess(RunStopped):
    """A collective of a distributed run failed: another process of the job died or was stopped."""


class RunFolderBusy(UserError):
    """Another process trains in the run folder."""


class AmbiguousComponentError(UserError):
    pass


class PluginContractError(Exception):
    """A plugin module that does not follow the hook contract (an unknown hook name, say)."""


class TooLarge(UserError):
    """A size asked for (a width, a latent dimension, a batch) that memory or torch's integers cannot hold."""


class NotARegularFile(OSError):
    """The path is a FIFO, a device, a socket or a folder: nothing a run or an export is."""


class SharedError(UserError):
    """A mistake every rank raises: rank 0 says it, the others exit quietly."""

    def __init__(self, message: str, quiet: bool = False) -> None:
        super().__init__(message)
        self.quiet = quiet


class TargetMissing(UserError):
    """A study's trial trained, but its evaluations never logged the study's target."""
