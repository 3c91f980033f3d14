"""The local gateway's captured mail: `GET /projects/v1/admin/<id>/mailbox[?to=<email>]`.

Local only (the hosted API has no such route): magic links, invites and other mail the local
gateway "sent" land in the project's mailbox instead of leaving the machine.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from run402_cli.api.client import Client

__all__ = ["list_messages"]


def list_messages(client: Client, project_id: str, service_key: str, to: str | None = None) -> Any:
    """(Bearer SVC) -> `{project_id, messages:[{id, to, subject, body_text, kind, created_at}]}`,
    newest first; `to` keeps only the mail for one address."""
    return client.request(
        "GET", f"/projects/v1/admin/{quote(project_id, safe='')}/mailbox",
        params={"to": to} if to is not None else None, bearer=service_key, wallet_auth=False,
        context="reading the local mailbox",
    )
