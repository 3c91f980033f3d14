"""What a project's service key does with its end users: the auth settings,
creating and inviting users, promote / demote, and the local mailbox that captures their mail.

Split from users.py (sign-up, sign-in grants, sessions, magic links), whose helpers it shares.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.local.control.callers import project_from_service_key
from run402_cli.local.data.users import (
    _USER_COLS, _body, _check_redirect, _email, _err, _find_user, _iso, _project_from_apikey, _settings,
    create_magic_link,
)
from run402_cli.local.errors import GatewayError

__all__: list[str] = []  # handlers only: local/routes.py lists them

_SETTING_VALUES = {
    "allow_password_set": (True, False),
    "preferred_sign_in_method": ("password", "magic_link", "oauth_google", "passkey", None),
    "public_signup": ("open", "known_email", "invite_only"),
    "require_passkey_for_project_admin": (True, False),
}


async def _patch_settings(request: Request) -> JSONResponse:
    body = await _body(request)

    def work() -> JSONResponse:
        ctx = request.app.state.ctx
        project = _project_from_apikey(request, ctx, service=True)
        for key, value in body.items():
            if key not in _SETTING_VALUES:
                raise _err(400, "UNKNOWN_SETTING", f"Unknown setting {key!r}", details={"allowed": list(_SETTING_VALUES)})
            if value not in _SETTING_VALUES[key] or (isinstance(value, bool) != isinstance(_SETTING_VALUES[key][0], bool)
                                                     and value is not None):
                raise _err(400, "INVALID_SETTING", f"Invalid value for {key}: {value!r}",
                           details={"allowed": list(_SETTING_VALUES[key])})
        with ctx.pool.connection() as conn, conn.transaction():
            merged = {**_settings(conn, project.id), **body}
            conn.execute("INSERT INTO run402_meta.auth_settings (project_id, settings) VALUES (%s, %s) "
                         "ON CONFLICT (project_id) DO UPDATE SET settings = EXCLUDED.settings",
                         (project.id, json.dumps(merged)))
        return JSONResponse(merged)

    return await run_in_threadpool(work)


def _get_settings(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    project = _project_from_apikey(request, ctx, service=True)
    with ctx.pool.connection() as conn:
        return JSONResponse(_settings(conn, project.id))


async def _admin_create_user(request: Request) -> JSONResponse:
    body = await _body(request)

    def work() -> JSONResponse:
        ctx = request.app.state.ctx
        project = _project_from_apikey(request, ctx, service=True)
        email = _email(body)
        is_admin = body.get("is_admin", False)
        if not isinstance(is_admin, bool):
            raise _err(400, "BAD_REQUEST", "is_admin must be true or false")
        send_invite = bool(body.get("send_invite"))
        redirect = _check_redirect(body.get("redirect_url")) if send_invite else None
        with ctx.pool.connection() as conn, conn.transaction():
            existing = _find_user(conn, project.id, email)
            role = "project_admin" if is_admin else "authenticated"
            if existing is None:
                row = conn.execute(f"INSERT INTO run402_meta.users (project_id, email, role) VALUES (%s, %s, %s) "
                                   f"RETURNING {_USER_COLS}", (project.id, email, role)).fetchone()
                created = True
            else:
                row = conn.execute(f"UPDATE run402_meta.users SET role = %s WHERE id = %s RETURNING {_USER_COLS}",
                                   (role, existing[0])).fetchone()
                created = False
            if send_invite:
                create_magic_link(conn, project, email=email, redirect_url=redirect, intent="invite",
                                  client_state=body.get("client_state"), state_source="service_key")
        return JSONResponse({"id": str(row[0]), "email": row[1], "is_admin": row[3] == "project_admin",
                             "email_verified_at": _iso(row[4]), "created": created, "invite_sent": send_invite},
                            status_code=201 if created else 200)

    return await run_in_threadpool(work)


async def _set_role(request: Request, role: str) -> JSONResponse:
    body = await _body(request)

    def work() -> JSONResponse:
        ctx = request.app.state.ctx
        project = project_from_service_key(request, ctx, request.path_params["id"])
        email = _email(body)
        with ctx.pool.connection() as conn:
            row = conn.execute("UPDATE run402_meta.users SET role = %s WHERE project_id = %s AND lower(email) = %s "
                               "RETURNING id", (role, project.id, email)).fetchone()
        if row is None:
            raise GatewayError(404, "USER_NOT_FOUND", f"No user {email} in this project")
        return JSONResponse({"status": "ok", "email": email, "role": role})

    return await run_in_threadpool(work)


async def _promote(request: Request) -> JSONResponse:
    return await _set_role(request, "project_admin")


async def _demote(request: Request) -> JSONResponse:
    return await _set_role(request, "authenticated")


def _mailbox(request: Request) -> JSONResponse:
    """Local only: the mail the gateway captured for this project, newest first."""
    ctx = request.app.state.ctx
    project = project_from_service_key(request, ctx, request.path_params["id"])
    to = request.query_params.get("to")
    with ctx.pool.connection() as conn:
        rows = conn.execute(
            "SELECT id, to_address, subject, body_text, kind, created_at FROM run402_meta.mailbox "
            "WHERE project_id = %s AND (%s::text IS NULL OR lower(to_address) = lower(%s)) ORDER BY id DESC LIMIT 100",
            (project.id, to, to)).fetchall()
    return JSONResponse({"project_id": project.id, "messages": [
        {"id": str(r[0]), "to": r[1], "subject": r[2], "body_text": r[3], "kind": r[4], "created_at": _iso(r[5])}
        for r in rows]})
