"""Datasets that need no download (digits, gaussians, stacked); each submodule is a plugin of its own."""
