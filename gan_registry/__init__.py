"""gan-registry: a plugin-based framework for training GANs in PyTorch.

The public surface, for plugin authors and for scripts; importing it does not import torch.
Stability: 0.x. Names here keep working within 0.x; they may gain optional arguments and fields
(labels and conditioning, feature extractors, augmentations and loggers are on their way).
"""
from ._components import (
    KINDS,
    Architecture,
    Batch,
    Callback,
    DataContext,
    Dataset,
    DataSource,
    Discriminator,
    Encoder,
    Generator,
    Kind,
    Metric,
    NetworkSpec,
    Needs,
    Objective,
    Origin,
    Phase,
    resolve_norm,
    standard_normal,
)
from ._registry import PluginInfo, Registry, qualified_name
from .api import Run, load_plugins
from .errors import (
    CheckpointError,
    Diverged,
    IncompatibleError,
    Interrupted,
    PluginFailure,
    RunStopped,
    UserError,
    WriteError,
)
from .hookspecs import hookimpl
from .protocols import (
    CallbackProtocol,
    DiscriminatorProtocol,
    EncoderProtocol,
    GeneratorProtocol,
    LatentPrior,
    MetricProtocol,
    ObjectiveProtocol,
)

__version__ = "0.3.0"

__all__ = [
    "KINDS",
    "Architecture",
    "Batch",
    "Callback",
    "CallbackProtocol",
    "DataContext",
    "DataSource",
    "Dataset",
    "Discriminator",
    "DiscriminatorProtocol",
    "Encoder",
    "EncoderProtocol",
    "Generator",
    "GeneratorProtocol",
    "CheckpointError",
    "Diverged",
    "IncompatibleError",
    "Interrupted",
    "PluginFailure",
    "RunStopped",
    "WriteError",
    "Kind",
    "LatentPrior",
    "Metric",
    "MetricProtocol",
    "NetworkSpec",
    "Needs",
    "Objective",
    "ObjectiveProtocol",
    "Origin",
    "Phase",
    "PluginInfo",
    "Registry",
    "Run",
    "UserError",
    "hookimpl",
    "load_plugins",
    "qualified_name",
    "resolve_norm",
    "standard_normal",
    "__version__",
]
