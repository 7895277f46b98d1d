"""Wiring: settings, the daemon (FastAPI app factory, event bus, pages) and the CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tiepdon")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+checkout"
