"""run402: an agent-shell JSON CLI for Run402, and a local Run402-compatible gateway."""

__version__ = "0.1.0"
