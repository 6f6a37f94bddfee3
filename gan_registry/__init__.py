"""gan-registry: a plugin-based framework for training GANs in PyTorch.

The public surface for plugin authors; importing it does not import torch.
"""
from ._components import (
    Architecture,
    DataContext,
    Dataset,
    DataSource,
    Discriminator,
    Encoder,
    Generator,
    Metric,
    NetworkSpec,
    Needs,
    Objective,
    Origin,
    Phase,
    resolve_norm,
)
from .errors import IncompatibleError, UserError
from .hookspecs import hookimpl

__version__ = "0.2.0"

__all__ = [
    "Architecture",
    "DataContext",
    "Dataset",
    "DataSource",
    "Discriminator",
    "Encoder",
    "Generator",
    "IncompatibleError",
    "Metric",
    "NetworkSpec",
    "Needs",
    "Objective",
    "Origin",
    "Phase",
    "UserError",
    "hookimpl",
    "resolve_norm",
    "__version__",
]
