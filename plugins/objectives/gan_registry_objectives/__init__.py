"""Objectives for gan-registry; each submodule is a plugin of its own (see pyproject's entry points)."""
