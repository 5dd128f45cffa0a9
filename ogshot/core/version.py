"""The package version, in a module of its own so that anything can import it without importing
the package root (which would be a cycle)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
