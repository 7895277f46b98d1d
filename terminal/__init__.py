"""Wiring: settings, the daemon (FastAPI app factory, event bus, pages) and the CLI."""
