"""Subcommands of the ``samic-fast`` CLI, one module each (see :mod:`samic_fast.cli`)."""
