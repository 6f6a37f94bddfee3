"""gan-registry: a plugin-based framework for training GANs in PyTorch.

The public surface, for plugin authors and for scripts; importing it does not import torch.
Stability: 0.x. Names here keep working within 0.x; they may gain optional arguments and fields
(labels and conditioning, feature extractors, augmentations and loggers are on their way).
"""
from ._components import (
    EMA_KEY,
    KINDS,
    Architecture,
    Augment,
    Batch,
    Callback,
    ConditionParams,
    DataContext,
    Dataset,
    DataSource,
    Discriminator,
    Encoder,
    Extractor,
    ExtractorContext,
    Features,
    Generator,
    Kind,
    Metric,
    NetworkSpec,
    Needs,
    Objective,
    Origin,
    Phase,
    Scale,
    Stream,
    resolve_norm,
    standard_normal,
    to_unit,
    to_values,
)
from ._schedules import Schedule
from ._registry import PluginInfo, Registry, qualified_name
from .api import Run, Study, load_plugins, matrix
from .api import LoadedGenerator, load_generator
from .errors import (
    AmbiguousComponentError,
    CheckpointError,
    Diverged,
    DuplicateComponentError,
    IncompatibleError,
    Interrupted,
    LostProcess,
    NotARegularFile,
    ParameterError,
    PluginContractError,
    PluginFailure,
    PluginLoadError,
    PluginWarning,
    RunFolderBusy,
    RunStopped,
    SharedError,
    TargetMissing,
    TooLarge,
    UnknownComponentError,
    UserError,
    WriteError,
)
from .hookspecs import hookimpl
from .protocols import (
    AugmentProtocol,
    CallbackProtocol,
    DiscriminatorProtocol,
    EncoderProtocol,
    ExtractorProtocol,
    GeneratorProtocol,
    LatentPrior,
    MetricProtocol,
    ObjectiveProtocol,
)

from ._version import __version__

# The three helpers below import torch's modules when called (torch: ~3 s): every plugin and `gan --help` import
# this package, and start without torch.


def load_weights(path):
    """A weights file (a state dict saved with torch.save) opened as untrusted input: plain tensors only.

    A file holding Python objects is refused (CheckpointError, exit 2) without running anything in it.
    """
    from .checkpoint import load_weights as load

    return load(path)


def input_gradients(outputs, inputs, *, create_graph=True):
    """The gradient of `outputs.sum()` with respect to `inputs` (float32), for gradient penalties: right under
    every `--precision` (fp16's loss scale applied and taken off, without a host sync). Declare
    `Needs(input_gradients=True)` where a loss trains on it, so that `--compile` leaves the discriminator eager."""
    from ._speed import input_gradients as gradients

    return gradients(outputs, inputs, create_graph=create_graph)


def cache_dir(*parts):
    """gan-registry's folder in the user's cache ($GAN_REGISTRY_CACHE, else $XDG_CACHE_HOME/gan-registry), or a
    folder under it: where plugins keep what they train or convert (a pathlib.Path; not created)."""
    from .evaluation import cache_dir as folder

    return folder(*parts)


__all__ = [
    "EMA_KEY",
    "AmbiguousComponentError",
    "Architecture",
    "Augment",
    "AugmentProtocol",
    "Batch",
    "Callback",
    "CallbackProtocol",
    "CheckpointError",
    "ConditionParams",
    "DataContext",
    "DataSource",
    "Dataset",
    "Discriminator",
    "DiscriminatorProtocol",
    "Diverged",
    "DuplicateComponentError",
    "Encoder",
    "EncoderProtocol",
    "Extractor",
    "ExtractorContext",
    "ExtractorProtocol",
    "Features",
    "Generator",
    "GeneratorProtocol",
    "IncompatibleError",
    "Interrupted",
    "KINDS",
    "Kind",
    "LatentPrior",
    "LostProcess",
    "Metric",
    "MetricProtocol",
    "Needs",
    "NetworkSpec",
    "NotARegularFile",
    "Objective",
    "ObjectiveProtocol",
    "Origin",
    "ParameterError",
    "Phase",
    "PluginContractError",
    "PluginFailure",
    "PluginInfo",
    "PluginLoadError",
    "PluginWarning",
    "Registry",
    "Run",
    "RunFolderBusy",
    "RunStopped",
    "Scale",
    "Schedule",
    "SharedError",
    "TargetMissing",
    "Study",
    "TooLarge",
    "UnknownComponentError",
    "UserError",
    "WriteError",
    "cache_dir",
    "hookimpl",
    "input_gradients",
    "load_plugins",
    "load_weights",
    "matrix",
    "qualified_name",
    "resolve_norm",
    "standard_normal",
    "to_unit",
    "to_values",
    "Stream",
    "__version__",
    "LoadedGenerator",
    "load_generator",
]
