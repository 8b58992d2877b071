"""Subcommands of the ``vau-r1`` command line; each module exposes ``register(subparsers)``."""
