"""Datasets that need no download; each submodule is a plugin of its own."""
