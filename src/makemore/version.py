"""The package version: a leaf module, so that what needs it imports nothing else of makemore."""

__version__ = "0.1.0"
