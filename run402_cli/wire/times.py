"""Timestamps on the wire: ISO-8601 UTC with a trailing "Z" (what the hosted API returns)."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["iso"]


def iso(dt: datetime | None) -> str | None:
    """`2026-12-02T18:00:00.123456Z`; None stays None (an unset time)."""
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if dt else None
