"""Project end-user auth administration: `/auth/v1/*` and
the promote/demote admin calls.

Every `/auth/v1` call carries the anon key in `apikey` and never SIWX, with the credential in
`Authorization: Bearer`: the service key where one is needed (creating users, settings, invite
links), a user's access token (set-password), else the anon key again — the official client's
headers (a gateway reads the Bearer first on service-key routes; the local one does).
Promote/demote are control-plane admin calls: Bearer service key, no apikey.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from run402_cli.api.client import Client

__all__ = [
    "create_user",
    "demote_user",
    "magic_link",
    "promote_user",
    "providers",
    "set_password",
    "settings",
    "verify",
]


def _auth(client: Client, method: str, path: str, anon_key: str, *, bearer: str | None = None,
          json: Any = None, params: dict[str, Any] | None = None, context: str) -> Any:
    return client.request(
        method, "/auth/v1" + path, json=json, params=params, headers={"apikey": anon_key},
        bearer=bearer or anon_key, wallet_auth=False, context=context,
    )


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def magic_link(client: Client, anon_key: str, email: str, redirect_url: str,
               intent: str | None = None, client_state: str | None = None, *,
               service_key: str | None = None) -> Any:
    """`POST /auth/v1/magic-link {email, redirect_url, intent?, client_state?}`. A trusted
    invite (`intent="invite"`) needs the service key as Bearer. The link is mailed (on the
    local gateway: into the project's mailbox); the body is not meaningful."""
    return _auth(
        client, "POST", "/magic-link", anon_key, bearer=service_key,
        json=_drop_none({"email": email, "redirect_url": redirect_url, "intent": intent,
                         "client_state": client_state}),
        context="requesting magic link",
    )


def verify(client: Client, anon_key: str, token: str) -> Any:
    """`POST /auth/v1/token?grant_type=magic_link {token}` -> a session
    `{access_token, refresh_token, token_type, expires_in, user, magic_link?}`."""
    return _auth(
        client, "POST", "/token", anon_key, params={"grant_type": "magic_link"},
        json={"token": token}, context="verifying magic link",
    )


def create_user(client: Client, anon_key: str, service_key: str, email: str, *,
                is_admin: bool | None = None, send_invite: bool = False,
                redirect_url: str | None = None, client_state: str | None = None) -> Any:
    """`POST /auth/v1/admin/users` (service key): create or update a user ->
    `{id, email, is_admin, email_verified_at, created, invite_sent}`. `send_invite` is always
    sent, false included, as the official client does."""
    body = _drop_none({"email": email, "is_admin": is_admin, "send_invite": send_invite,
                       "redirect_url": redirect_url, "client_state": client_state})
    return _auth(client, "POST", "/admin/users", anon_key, bearer=service_key, json=body,
                 context="creating user")


def set_password(client: Client, anon_key: str, access_token: str, new_password: str,
                 current_password: str | None = None) -> Any:
    """`PUT /auth/v1/user/password {new_password, current_password?}` as the user (Bearer =
    the user's access token). `current_password` is needed once a password exists."""
    return _auth(
        client, "PUT", "/user/password", anon_key, bearer=access_token,
        json=_drop_none({"new_password": new_password, "current_password": current_password}),
        context="setting password",
    )


def settings(client: Client, anon_key: str, service_key: str, patch: dict[str, Any]) -> Any:
    """`PATCH /auth/v1/settings` (service key) with any of `allow_password_set`,
    `preferred_sign_in_method` (may be null), `public_signup`,
    `require_passkey_for_project_admin` -> the full settings object."""
    return _auth(client, "PATCH", "/settings", anon_key, bearer=service_key, json=patch,
                 context="updating auth settings")


def providers(client: Client, anon_key: str) -> Any:
    """`GET /auth/v1/providers` (anon key) -> the project's sign-in methods, e.g.
    `{providers:[...]}` (the local gateway adds `not_available_locally`)."""
    return _auth(client, "GET", "/providers", anon_key, context="listing auth providers")


def _set_role(client: Client, project_id: str, service_key: str, email: str, verb: str,
              context: str) -> Any:
    return client.request(
        "POST", f"/projects/v1/admin/{quote(project_id, safe='')}/{verb}", json={"email": email},
        bearer=service_key, context=context,
    )


def promote_user(client: Client, project_id: str, service_key: str, email: str) -> Any:
    """`POST /projects/v1/admin/<id>/promote-user {email}` (Bearer SVC): role `project_admin`.
    An unknown user is a 404 `USER_NOT_FOUND`."""
    return _set_role(client, project_id, service_key, email, "promote-user", "promoting user")


def demote_user(client: Client, project_id: str, service_key: str, email: str) -> Any:
    """`POST /projects/v1/admin/<id>/demote-user {email}` (Bearer SVC): back to `authenticated`."""
    return _set_role(client, project_id, service_key, email, "demote-user", "demoting user")
