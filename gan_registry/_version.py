"""The core's version (kept in step with pyproject.toml), in a module of its own so that any layer can name it
without importing the package's public face, which imports every layer.

Layer: contracts (docs/architecture.md).
"""
__version__ = "0.17.0"
