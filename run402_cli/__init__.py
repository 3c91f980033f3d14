"""run402: an agent-shell JSON CLI for Run402, and a local Run402-compatible gateway."""

import sys as _sys

__version__ = "0.1.0"

# httpx's package __init__ imports its own command-line client (click, rich, pygments: ~100 ms)
# whenever those libraries are installed, and Typer installs them. We never run httpx's CLI:
# a None entry in sys.modules makes that one import raise ImportError, which httpx expects
# (it then defines a `main` that says its CLI extras are missing). Nothing else changes.
if "httpx" not in _sys.modules:
    _sys.modules.setdefault("httpx._main", None)  # type: ignore[assignment]
