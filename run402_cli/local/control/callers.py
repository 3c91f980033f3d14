"""Who is calling: a wallet (SIGN-IN-WITH-X) or a project (its service key).

A wallet failure is a 402, as the hosted API does ("per x402 spec"), and carries a
PAYMENT-REQUIRED header with no payment options, only the sign-in-with-x extension: a client
sees *why* and is not tempted to pay."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

import jwt as pyjwt
from starlette.requests import Request

from run402_cli.local.context import GatewayContext
from run402_cli.local.errors import GatewayError
from run402_cli.local.control.limits import LOOKUP_THREADS
from run402_cli.local.control.siwx import SiwxError, verify_siwx
from run402_cli.local.control.x402 import payment_header, payment_required, payment_required_header

__all__ = [
    "Project", "bearer_token", "cached_project", "load_project", "mint_key", "project_from_service_key",
    "project_of_service_key",
    "request_origin", "service_key_gate_key", "verify_project_token", "verify_project_token_async",
    "wallet_from_siwx",
]


def request_origin(request: Request) -> tuple[str, str]:
    host = request.headers.get("host", "")
    return host, f"{request.url.scheme}://{host}"


def _siwx_refusal(request: Request, reason: str) -> GatewayError:
    pr = payment_required(accepts=[], resource_url=str(request.url),
                          description="Wallet sign-in required", error=reason)
    pr["extensions"] = {"sign-in-with-x": {"supportedChains": [{"chainId": "eip155:84532", "type": "eip191"}],
                                           "statement": "Sign in to Run402"}}
    return GatewayError(
        402, "AUTHENTICATION_REQUIRED", f"Wallet authentication failed: {reason}",
        category="auth", hint="Send a fresh SIGN-IN-WITH-X header signed by your allowance (run402 init)",
        next_actions=[{"action": "authenticate"}],
        headers={"PAYMENT-REQUIRED": payment_required_header(pr)},
    )


# A signed header is presented at most twice: the request, and that same request (same
# wallet, method and path) again with an x402 payment, which is how x402 clients answer a 402
# without signing afresh. A bare replay cannot re-run a free wallet action (a provision).
SIWX_PRESENTATIONS = 2


def wallet_from_siwx(request: Request, ctx: GatewayContext) -> str:
    """The lowercase wallet address, or a 402."""
    header = request.headers.get("sign-in-with-x")
    if not header:
        raise _siwx_refusal(request, "missing SIGN-IN-WITH-X header")
    host, origin = request_origin(request)
    try:
        claims = verify_siwx(header, host=host, origin=origin, path=request.url.path)
    except SiwxError as exc:
        raise _siwx_refusal(request, getattr(exc, "reason", str(exc))) from None
    repeat_allowed = payment_header(request.headers) is not None
    with ctx.pool.connection() as conn:
        conn.execute("DELETE FROM run402_meta.siwx_nonces WHERE expires_at < now()")
        admitted = conn.execute(
            "INSERT INTO run402_meta.siwx_nonces AS seen (nonce, wallet, expires_at, method, path) "
            "VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (nonce) DO UPDATE SET uses = seen.uses + 1 "
            "WHERE %s AND seen.uses < %s AND seen.wallet = EXCLUDED.wallet "
            "AND seen.method = EXCLUDED.method AND seen.path = EXCLUDED.path "
            "RETURNING nonce",
            (claims.nonce, claims.address, claims.expiration_time, request.method, claims.path,
             repeat_allowed, SIWX_PRESENTATIONS),
        ).fetchone()
    if admitted is None:
        raise _siwx_refusal(request, "replayed SIGN-IN-WITH-X nonce")
    return claims.address


@dataclass(frozen=True)
class Project:
    id: str
    name: str | None
    wallet: str
    tier: str
    schema_slot: str
    jwt_secret: str
    sql_password: str
    status: str
    api_calls: int
    created_at: datetime


_PROJECT_COLS = "id, name, wallet, tier, schema_slot, jwt_secret, sql_password, status, api_calls, created_at"


def load_project(ctx: GatewayContext, project_id: str) -> Project | None:
    with ctx.pool.connection() as conn:
        row = conn.execute(
            f"SELECT {_PROJECT_COLS} FROM run402_meta.projects WHERE id = %s AND status <> 'purged'",
            (project_id,),
        ).fetchone()
    return Project(*row) if row else None


def mint_key(project: Project, role: str) -> str:
    """Project keys: HS256 JWTs with `role` and `project_id`, signed with the project's own
    secret, no expiry (the lease is enforced server-side)."""
    now = int(datetime.now(timezone.utc).timestamp())
    return pyjwt.encode({"role": role, "project_id": project.id, "iss": "run402", "iat": now},
                        project.jwt_secret, algorithm="HS256")


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("apikey")


def _named_project(token: str) -> str:
    """The project id a token claims (not yet verified), or a 401."""
    try:
        unverified = pyjwt.decode(token, options={"verify_signature": False})
        header = pyjwt.get_unverified_header(token)
    except pyjwt.PyJWTError:
        raise GatewayError(401, "UNAUTHORIZED", "Malformed token", category="auth") from None
    if header.get("alg") != "HS256" or not isinstance(unverified.get("project_id"), str):
        raise GatewayError(401, "UNAUTHORIZED", "Token is not a Run402 project token", category="auth")
    return unverified["project_id"]


def _verify_for(project: Project | None, token: str) -> tuple[Project, dict]:
    if project is None:
        raise GatewayError(401, "UNAUTHORIZED", "Token names an unknown project", category="auth")
    try:
        claims = pyjwt.decode(token, project.jwt_secret, algorithms=["HS256"],
                              options={"require": ["role", "project_id"]})
    except pyjwt.ExpiredSignatureError:
        raise GatewayError(401, "UNAUTHORIZED", "Token expired", category="auth",
                           hint="Refresh the session (grant_type=refresh_token)") from None
    except pyjwt.PyJWTError:
        raise GatewayError(401, "UNAUTHORIZED", "Invalid token signature", category="auth") from None
    if claims.get("role") in ("authenticated", "project_admin") and "exp" not in claims:
        raise GatewayError(401, "UNAUTHORIZED", "User tokens must expire", category="auth")
    return project, claims


def verify_project_token(ctx: GatewayContext, token: str) -> tuple[Project, dict]:
    """Any project JWT (anon key, service key, user access token): the project it names must
    exist and have signed it. HS256 only; `exp` is enforced when present (user tokens)."""
    return _verify_for(load_project(ctx, _named_project(token)), token)


async def cached_project(ctx: GatewayContext, project_id: str) -> Project | None:
    """load_project for async hot paths: from a 5-second cache (dropped whenever a schema
    changes, which deleting a project does), else read in a small dedicated thread pool, so a
    tenant that fills Starlette's shared pool cannot delay another tenant's requests."""
    cache = ctx.limits.projects
    hit = cache.get(project_id, not_before=ctx.schema_changed_at)
    if hit is not None:
        return hit
    started = cache.now()
    project = await ctx.limits.in_thread("lookup", LOOKUP_THREADS, load_project, ctx, project_id)
    if project is not None:
        cache.put(project_id, project, fetched_at=started)
    return project


async def verify_project_token_async(ctx: GatewayContext, token: str) -> tuple[Project, dict]:
    """verify_project_token, for the event loop (see cached_project).

    A token verified before is not decoded and HMAC-checked again (that was a fifth of the
    gateway's CPU per REST call): the cache holds, by the token's exact text, the claims and
    the secret that verified them. A remembered verification counts only while it would give
    the same answer: the project still exists (its row comes from cached_project as always)
    with that same secret, and the token has not expired since. Tokens whose validity can
    change in other ways with time (`nbf`, or an `exp` that is not an integer) are never kept;
    only successes are, so a failure is always worked out (and reported) afresh."""
    remembered = ctx.limits.tokens.get(token)
    if remembered is not None:
        project_id, secret, claims = remembered
        project = await cached_project(ctx, project_id)
        exp = claims.get("exp")
        if project is not None and project.jwt_secret == secret and (exp is None or exp > time.time()):
            return project, dict(claims)
        ctx.limits.tokens.invalidate(token)
    project, claims = _verify_for(await cached_project(ctx, _named_project(token)), token)
    if "nbf" not in claims and (claims.get("exp") is None or type(claims["exp"]) is int):
        ctx.limits.tokens.put(token, (project.id, project.jwt_secret, dict(claims)))
    return project, claims


async def service_key_gate_key(request: Request, ctx: GatewayContext, project_id: str) -> str:
    """What a per-project gate is keyed by on a service-key route: the project id once the bearer
    is verified as that project's service key. Anything else shares one key, so forged or foreign
    keys naming a project cannot occupy its slots (the route itself then refuses them)."""
    token = bearer_token(request)
    try:
        project, claims = await verify_project_token_async(ctx, token or "")
    except GatewayError:
        return ""
    ok = project.id == project_id and claims.get("role") == "service_role"
    return project.id if ok else ""


def project_of_service_key(request: Request, ctx: GatewayContext, what: str) -> Project:
    """The project whose service key the caller holds, for routes that name no project in
    their path (subdomains, jobs): 401 without a key, 403 for any other kind of key."""
    token = bearer_token(request)
    if not token:
        raise GatewayError(401, "UNAUTHORIZED", "Missing service key (Authorization: Bearer <service_key>)",
                           category="auth")
    project, claims = verify_project_token(ctx, token)
    if claims.get("role") != "service_role":
        raise GatewayError(403, "FORBIDDEN", f"{what} need the project's service key", category="auth")
    return project


def project_from_service_key(request: Request, ctx: GatewayContext, project_id: str) -> Project:
    """The project named in the path, if the caller holds *its* service key; else 401/403/404."""
    token = bearer_token(request)
    if not token:
        raise GatewayError(401, "UNAUTHORIZED", "Missing service key (Authorization: Bearer <service_key>)",
                           category="auth")
    try:
        named = pyjwt.decode(token, options={"verify_signature": False}).get("project_id")
    except pyjwt.PyJWTError:
        raise GatewayError(401, "UNAUTHORIZED", "Malformed project key", category="auth") from None
    found = load_project(ctx, project_id)  # read once: the 404, then the signature check
    if found is None:
        raise GatewayError(404, "PROJECT_NOT_FOUND", f"Project {project_id} not found", category="lifecycle")
    if named != project_id:
        raise GatewayError(403, "FORBIDDEN", "This key belongs to a different project", category="auth")
    _named_project(token)  # the same shape checks as every project token (HS256, project_id)
    project, claims = _verify_for(found, token)
    if claims.get("role") != "service_role":
        raise GatewayError(403, "FORBIDDEN", "This endpoint needs the project's service key", category="auth")
    ctx.limits.check_project(project.id)  # every service-key admin route passes here
    with ctx.pool.connection() as conn:
        conn.execute("UPDATE run402_meta.projects SET api_calls = api_calls + 1 WHERE id = %s", (project.id,))
    return project
