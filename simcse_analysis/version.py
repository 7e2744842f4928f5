"""The package version (a module of its own, so that library modules need not import the package namespace)."""

__version__ = "0.1.0"
