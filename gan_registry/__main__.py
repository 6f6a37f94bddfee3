"""`python -m gan_registry`: the `gan` command.

Layer: front ends (docs/architecture.md).
"""
from .cli import main

main()
