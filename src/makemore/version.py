"""makemore's version: the one place it is written (pyproject.toml reads it from here).

A leaf module, importing nothing, so what records the version (config.json, the page's /health)
does not import the package's __init__ and everything behind it."""

__version__ = "0.1.0"
