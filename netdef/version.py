"""netdef's version: one place, read by the package facade, the CLI, exported models and pyproject."""
__version__ = "0.2.0"
