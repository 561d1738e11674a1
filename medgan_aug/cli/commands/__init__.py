"""Subcommands of ``medgan-aug``: each module defines ``register(subparsers)``."""
