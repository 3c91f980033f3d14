"""End-user auth for each project: `/auth/v1/*`.

Passwords are hashed with argon2id. Access tokens are HS256 JWTs signed with the project's
secret (`sub`, `role`, `email`, `project_id`, 1 h). Refresh tokens are random, stored only as
hashes, single use: a refresh consumes the old one; presenting a used one revokes the user's
sessions (token theft looks exactly like that). Magic links and invites are "mailed" into the
project's local mailbox, which `run402 local mailbox` reads. What the service key does with the
users (settings, creating and inviting them, roles, the mailbox) is in user_admin.py.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt as pyjwt
import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from run402_cli.local.control.callers import Project, bearer_token, verify_project_token
from run402_cli.local.context import GatewayContext
from run402_cli.wire.times import iso as _iso
from run402_cli.local.errors import GatewayError
from run402_cli.local.http_body import read_json

__all__ = ["ACCESS_TTL"]

ACCESS_TTL = 3600
REFRESH_TTL = timedelta(days=30)
MAGIC_TTL = timedelta(minutes=15)
MAGIC_PER_EMAIL_PER_HOUR = 5
MIN_PASSWORD = 8
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
_HASHER = PasswordHasher()
_DEFAULT_SETTINGS = {"allow_password_set": True, "preferred_sign_in_method": None,
                     "public_signup": "open", "require_passkey_for_project_admin": False}
_INTENTS = ("signin", "invite", "claim", "recovery")
_USER_COLS = "id, email, password_hash, role, email_verified_at, display_name, avatar_url, created_at"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()




def _err(status: int, code: str, message: str, **kw: Any) -> GatewayError:
    return GatewayError(status, code, message, category="auth", **kw)


async def _body(request: Request) -> dict[str, Any]:
    try:
        return await read_json(request, empty={}, want_object=True)
    except GatewayError as exc:
        exc.category = "auth"
        raise


def _email(body: dict[str, Any]) -> str:
    email = body.get("email")
    if not isinstance(email, str) or not _EMAIL.match(email.strip()):
        raise _err(400, "INVALID_EMAIL", "email must be an email address")
    return email.strip().lower()


def _password(value: Any, field: str = "password") -> str:
    if not isinstance(value, str) or len(value) < MIN_PASSWORD or len(value) > 1024:
        raise _err(422, "WEAK_PASSWORD", f"{field} must be {MIN_PASSWORD}-1024 characters")
    return value


def _credential(request: Request, *, service: bool) -> str | None:
    """Service-key routes read the Bearer token first: the official client sends the anon key
    as `apikey` and the service key as `Authorization: Bearer` on them."""
    auth = request.headers.get("authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    apikey = request.headers.get("apikey")
    return (bearer or apikey) if service else (apikey or bearer)


def _project_from_apikey(request: Request, ctx: GatewayContext, *, service: bool = False) -> Project:
    key = _credential(request, service=service)
    if not key:
        raise _err(401, "UNAUTHORIZED", "Missing apikey header", hint="Send apikey: <anon_key>")
    project, claims = verify_project_token(ctx, key)
    if service and claims.get("role") != "service_role":
        raise _err(403, "FORBIDDEN", "This endpoint needs the project's service key")
    if not service and claims.get("role") not in ("anon", "service_role"):
        raise _err(401, "UNAUTHORIZED", "apikey must be the project's anon key")
    ctx.limits.check_project(project.id)
    return project


def _user_from_access_token(request: Request, ctx: GatewayContext) -> tuple[Project, dict[str, Any]]:
    token = bearer_token(request)
    if not token or request.headers.get("authorization") is None:
        raise _err(401, "UNAUTHORIZED", "Missing Authorization: Bearer <access_token>")
    project, claims = verify_project_token(ctx, token)
    if claims.get("role") not in ("authenticated", "project_admin") or "sub" not in claims:
        raise _err(401, "UNAUTHORIZED", "A user access token is required")
    apikey = request.headers.get("apikey")
    if apikey and apikey != token and verify_project_token(ctx, apikey)[0].id != project.id:
        raise _err(403, "FORBIDDEN", "apikey and access token belong to different projects")
    ctx.limits.check_project(project.id)
    return project, claims


def _settings(conn: psycopg.Connection, project_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT settings FROM run402_meta.auth_settings WHERE project_id = %s",
                       (project_id,)).fetchone()
    return {**_DEFAULT_SETTINGS, **(row[0] if row else {})}


def _user_json(row: tuple) -> dict[str, Any]:
    uid, email, pw, role, verified, display, avatar, created = row
    return {"id": str(uid), "email": email, "role": role, "email_verified_at": _iso(verified),
            "display_name": display, "avatar_url": avatar, "created_at": _iso(created),
            "identities": [{"provider": "email"}], "has_password": pw is not None}


def _session(conn: psycopg.Connection, project: Project, user: tuple) -> dict[str, Any]:
    now = int(time.time())
    uid, email, _pw, role = user[0], user[1], user[2], user[3]
    access = pyjwt.encode({"sub": str(uid), "role": role, "email": email, "project_id": project.id,
                           "iss": "run402", "iat": now, "exp": now + ACCESS_TTL},
                          project.jwt_secret, algorithm="HS256")
    refresh = secrets.token_urlsafe(32)
    conn.execute("INSERT INTO run402_meta.refresh_tokens (token_hash, project_id, user_id, expires_at) "
                 "VALUES (%s, %s, %s, now() + %s)", (_hash(refresh), project.id, uid, REFRESH_TTL))
    user_out = {k: v for k, v in _user_json(user).items() if k != "has_password"}
    return {"access_token": access, "token_type": "bearer", "expires_in": ACCESS_TTL,
            "expires_at": now + ACCESS_TTL, "refresh_token": refresh, "user": user_out}


def _find_user(conn: psycopg.Connection, project_id: str, email: str) -> tuple | None:
    return conn.execute(f"SELECT {_USER_COLS} FROM run402_meta.users WHERE project_id = %s AND lower(email) = %s",
                        (project_id, email)).fetchone()


def mail(conn: psycopg.Connection, project_id: str, to: str, subject: str, body: str, kind: str) -> None:
    conn.execute("INSERT INTO run402_meta.mailbox (project_id, to_address, subject, body_text, kind) "
                 "VALUES (%s, %s, %s, %s, %s)", (project_id, to, subject, body, kind))


# --- endpoints -----------------------------------------------------------------------


async def _signup(request: Request) -> JSONResponse:
    body = await _body(request)

    def work() -> JSONResponse:
        ctx = request.app.state.ctx
        project = _project_from_apikey(request, ctx)
        email, password = _email(body), _password(body.get("password"))
        with ctx.pool.connection() as conn, conn.transaction():
            settings = _settings(conn, project.id)
            if not settings["allow_password_set"]:
                raise _err(403, "PASSWORD_SIGNUP_DISABLED", "Password sign-up is disabled for this project")
            existing = _find_user(conn, project.id, email)
            if settings["public_signup"] != "open" and existing is None:
                raise _err(403, "SIGNUP_RESTRICTED", f"Sign-up is {settings['public_signup']} for this project")
            if existing is not None and existing[2] is not None:
                raise _err(409, "USER_EXISTS", "A user with this email already exists")
            hashed = _HASHER.hash(password)
            if existing is not None:  # a known (invited) email sets its first password
                conn.execute("UPDATE run402_meta.users SET password_hash = %s WHERE id = %s", (hashed, existing[0]))
                row = _find_user(conn, project.id, email)
            else:
                row = conn.execute(f"INSERT INTO run402_meta.users (project_id, email, password_hash) "
                                   f"VALUES (%s, %s, %s) RETURNING {_USER_COLS}", (project.id, email, hashed)).fetchone()
        out = {k: v for k, v in _user_json(row).items() if k != "has_password"}
        return JSONResponse(out, status_code=201)

    return await run_in_threadpool(work)


def _grant_password(request: Request, ctx: GatewayContext, body: dict[str, Any]) -> dict[str, Any]:
    project = _project_from_apikey(request, ctx)
    email = _email(body)
    password = body.get("password")
    # Guessing is throttled per account and per client; the attempt is spent before the check,
    # so an empty budget refuses the right password too (limits.LoginThrottle).
    account = f"{project.id}\x00{email}"
    client = f"{project.id}\x00{request.client.host if request.client else '?'}"
    ctx.limits.login.begin(account, client)
    with ctx.pool.connection() as conn, conn.transaction():
        user = _find_user(conn, project.id, email)
        ok = False
        if user is not None and user[2] is not None and isinstance(password, str):
            try:
                ok = _HASHER.verify(user[2], password)
            except (VerifyMismatchError, InvalidHashError):
                ok = False
        else:
            _HASHER.hash("timing-equaliser")  # unknown users cost the same as wrong passwords
        if not ok:
            raise _err(400, "INVALID_CREDENTIALS", "Invalid email or password")
        ctx.limits.login.succeeded(account, client)
        return _session(conn, project, user)


def _grant_refresh(request: Request, ctx: GatewayContext, body: dict[str, Any]) -> dict[str, Any]:
    project = _project_from_apikey(request, ctx)
    token = body.get("refresh_token")
    if not isinstance(token, str) or not token:
        raise _err(400, "INVALID_GRANT", "refresh_token is required")
    with ctx.pool.connection() as conn:
        with conn.transaction():
            row = conn.execute(
                "UPDATE run402_meta.refresh_tokens SET used_at = now() WHERE token_hash = %s AND project_id = %s "
                "AND used_at IS NULL AND expires_at > now() RETURNING user_id", (_hash(token), project.id)).fetchone()
            if row is not None:
                user = conn.execute(f"SELECT {_USER_COLS} FROM run402_meta.users WHERE id = %s", (row[0],)).fetchone()
                return _session(conn, project, user)
        # Not usable: if it was a real token already used, someone replayed it — end all sessions.
        reused = conn.execute("SELECT user_id FROM run402_meta.refresh_tokens WHERE token_hash = %s "
                              "AND project_id = %s AND used_at IS NOT NULL", (_hash(token), project.id)).fetchone()
        if reused is not None:
            conn.execute("UPDATE run402_meta.refresh_tokens SET used_at = now() WHERE user_id = %s "
                         "AND used_at IS NULL", (reused[0],))
    raise _err(401, "INVALID_GRANT", "Refresh token is invalid, expired or already used",
               hint="Sign in again")


def _grant_magic_link(request: Request, ctx: GatewayContext, body: dict[str, Any]) -> dict[str, Any]:
    project = _project_from_apikey(request, ctx)
    token = body.get("token")
    if not isinstance(token, str) or not token:
        raise _err(400, "INVALID_GRANT", "token is required")
    with ctx.pool.connection() as conn, conn.transaction():
        link = conn.execute(
            "UPDATE run402_meta.magic_links SET used_at = now() WHERE token_hash = %s AND project_id = %s "
            "AND used_at IS NULL AND expires_at > now() RETURNING email, intent, client_state, state_source",
            (_hash(token), project.id)).fetchone()
        if link is None:
            raise _err(401, "INVALID_GRANT", "Magic link is invalid, expired or already used")
        email, intent, client_state, state_source = link
        user = _find_user(conn, project.id, email)
        if user is None:
            if _settings(conn, project.id)["public_signup"] == "invite_only":
                raise _err(403, "SIGNUP_RESTRICTED", "Sign-up is invite_only for this project")
            conn.execute("INSERT INTO run402_meta.users (project_id, email, email_verified_at) VALUES (%s, %s, now())",
                         (project.id, email))
        else:
            conn.execute("UPDATE run402_meta.users SET email_verified_at = coalesce(email_verified_at, now()) "
                         "WHERE id = %s", (user[0],))
        user = _find_user(conn, project.id, email)
        session = _session(conn, project, user)
    session["magic_link"] = {"intent": intent, "client_state": client_state, "state_source": state_source,
                             "state_trusted": state_source == "service_key"}
    return session


_GRANTS = {"password": _grant_password, "refresh_token": _grant_refresh, "magic_link": _grant_magic_link}


async def _token(request: Request) -> JSONResponse:
    grant = request.query_params.get("grant_type")
    handler = _GRANTS.get(grant or "")
    if handler is None:
        raise _err(400, "UNSUPPORTED_GRANT_TYPE", f"grant_type must be one of {', '.join(_GRANTS)}",
                   details={"grant_type": grant})
    body = await _body(request)
    return JSONResponse(await run_in_threadpool(handler, request, request.app.state.ctx, body))


def _check_redirect(url: Any) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    host = (parts.hostname or "") if parts else ""
    local = host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost")
    if not parts or parts.scheme not in ("http", "https") or not local:
        raise _err(400, "INVALID_REDIRECT_URL",
                   "redirect_url must be an http(s) URL on localhost, 127.0.0.1 or *.localhost for the local gateway")
    return url


def create_magic_link(conn: psycopg.Connection, project: Project, *, email: str, redirect_url: str,
                      intent: str, client_state: str | None, state_source: str) -> str:
    (recent,) = conn.execute("SELECT count(*) FROM run402_meta.magic_links WHERE project_id = %s AND email = %s "
                             "AND created_at > now() - interval '1 hour'", (project.id, email)).fetchone()
    if recent >= MAGIC_PER_EMAIL_PER_HOUR:
        raise GatewayError(429, "RATE_LIMITED", f"At most {MAGIC_PER_EMAIL_PER_HOUR} magic links per email per hour",
                           category="auth", retryable=True, extra={"retry_after": 3600})
    token = secrets.token_urlsafe(32)
    conn.execute("INSERT INTO run402_meta.magic_links (token_hash, project_id, email, intent, redirect_url, "
                 "client_state, state_source, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now() + %s)",
                 (_hash(token), project.id, email, intent, redirect_url, client_state, state_source, MAGIC_TTL))
    sep = "&" if "?" in redirect_url else "?"
    link = f"{redirect_url}{sep}{urlencode({'token': token, 'type': 'magic_link'})}"
    subject = "You are invited" if intent == "invite" else "Your sign-in link"
    mail(conn, project.id, email, subject,
         f"Open this link within 15 minutes to {'accept the invitation' if intent == 'invite' else 'sign in'}:\n"
         f"{link}\n\ntoken: {token}\n", kind="magic_link")
    return token


async def _magic_link(request: Request) -> JSONResponse:
    body = await _body(request)

    def work() -> JSONResponse:
        ctx = request.app.state.ctx
        email = _email(body)
        redirect = _check_redirect(body.get("redirect_url"))
        intent = body.get("intent") or "signin"
        if intent not in _INTENTS:
            raise _err(400, "INVALID_INTENT", f"intent must be one of {', '.join(_INTENTS)}")
        state = body.get("client_state")
        if state is not None and (not isinstance(state, str) or len(state) > 2048):
            raise _err(400, "INVALID_CLIENT_STATE", "client_state must be a string of at most 2048 characters")
        project = _project_from_apikey(request, ctx, service=(intent == "invite"))
        key = _credential(request, service=(intent == "invite")) or ""
        source = "service_key" if verify_project_token(ctx, key)[1].get("role") == "service_role" else "anonymous"
        with ctx.pool.connection() as conn, conn.transaction():
            create_magic_link(conn, project, email=email, redirect_url=redirect, intent=intent,
                              client_state=state, state_source=source)
        return JSONResponse({"status": "ok", "email": email, "intent": intent})

    return await run_in_threadpool(work)


def _get_user(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    project, claims = _user_from_access_token(request, ctx)
    with ctx.pool.connection() as conn:
        row = conn.execute(f"SELECT {_USER_COLS} FROM run402_meta.users WHERE id = %s AND project_id = %s",
                           (claims["sub"], project.id)).fetchone()
    if row is None:
        raise _err(401, "UNAUTHORIZED", "User no longer exists")
    return JSONResponse({k: v for k, v in _user_json(row).items() if k != "has_password"})


def _logout(request: Request) -> Response:
    ctx = request.app.state.ctx
    project, claims = _user_from_access_token(request, ctx)
    with ctx.pool.connection() as conn:
        conn.execute("UPDATE run402_meta.refresh_tokens SET used_at = now() WHERE user_id = %s AND used_at IS NULL",
                     (claims["sub"],))
    return Response(status_code=204)


async def _set_password(request: Request) -> JSONResponse:
    body = await _body(request)

    def work() -> JSONResponse:
        ctx = request.app.state.ctx
        project, claims = _user_from_access_token(request, ctx)
        new = _password(body.get("new_password"), "new_password")
        with ctx.pool.connection() as conn, conn.transaction():
            if not _settings(conn, project.id)["allow_password_set"]:
                raise _err(403, "PASSWORD_SET_DISABLED", "Passwords are disabled for this project")
            row = conn.execute("SELECT password_hash FROM run402_meta.users WHERE id = %s FOR UPDATE",
                               (claims["sub"],)).fetchone()
            if row is None:
                raise _err(401, "UNAUTHORIZED", "User no longer exists")
            if row[0] is not None:
                current = body.get("current_password")
                try:
                    ok = isinstance(current, str) and _HASHER.verify(row[0], current)
                except (VerifyMismatchError, InvalidHashError):
                    ok = False
                if not ok:
                    raise _err(400, "INVALID_CREDENTIALS", "current_password is required and must match")
            conn.execute("UPDATE run402_meta.users SET password_hash = %s WHERE id = %s",
                         (_HASHER.hash(new), claims["sub"]))
        return JSONResponse({"status": "ok"})

    return await run_in_threadpool(work)


def _providers(request: Request) -> JSONResponse:
    _project_from_apikey(request, request.app.state.ctx)
    # Google OAuth and passkeys need the outside world (Google, a browser authenticator).
    return JSONResponse({"providers": ["email", "magic_link"],
                         "not_available_locally": ["google", "passkey"]})
