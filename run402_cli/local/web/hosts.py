"""Which requests are for a site: a Host under `.localhost` (`<label>.localhost[:port]`).

One rule for every layer that asks: the body caps (a site's routed requests get the routed
cap), the hot lane (a site host goes the long way), site dispatch and release URLs.
"""

from __future__ import annotations

__all__ = ["site_hostname", "site_hostname_of"]


def site_hostname(host: str) -> str | None:
    """`foo.localhost:4020` -> `foo.localhost`; None for hosts that are not sites."""
    name = host.strip().lower()
    if name.startswith("["):
        return None
    name = name.rsplit(":", 1)[0] if ":" in name else name
    name = name.rstrip(".")
    return name if name.endswith(".localhost") and name != ".localhost" else None


def site_hostname_of(headers: list[tuple[bytes, bytes]]) -> str | None:
    """`site_hostname` of a request's first Host header (ASGI header names are lowercase)."""
    host = next((v for k, v in headers if k == b"host"), None)
    return None if host is None else site_hostname(host.decode("latin-1"))
