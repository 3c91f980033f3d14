"""What the REST hot path remembers between requests, and when it must not: verified project
tokens (control/callers.verify_project_token_async) and the internal token PostgREST gets
(data/rest._internal_token). No gateway: a context with a project cache filled by hand."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import jwt as pyjwt
import pytest

from run402_cli.local.control import callers, limits
from run402_cli.local.control.callers import Project, verify_project_token_async
from run402_cli.local.control.limits import Limits
from run402_cli.local.data import rest
from run402_cli.local.errors import GatewayError


def _project(secret: str = "s" * 40, pid: str = "prj_1") -> Project:
    return Project(id=pid, name="p", wallet="0xabc", tier="prototype", schema_slot="p0001", jwt_secret=secret,
                   sql_password="pw", status="active", api_calls=0, created_at=datetime.now(timezone.utc))


def _ctx(project: Project | None) -> Any:
    ctx = SimpleNamespace(limits=Limits(rate=1000.0), schema_changed_at=0.0, postgrest_jwt_secret="i" * 40)
    if project is not None:
        ctx.limits.projects.put(project.id, project)
    return ctx


def _token(project: Project, **claims: Any) -> str:
    return pyjwt.encode({"role": "anon", "project_id": project.id, "iat": int(time.time()), **claims},
                        project.jwt_secret, algorithm="HS256")


def _verify(ctx: Any, token: str) -> tuple[Project, dict]:
    return asyncio.run(verify_project_token_async(ctx, token))


def _no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kw: Any) -> Any:
        raise AssertionError("decoded again")

    monkeypatch.setattr(callers.pyjwt, "decode", refuse)
    monkeypatch.setattr(callers.pyjwt, "get_unverified_header", refuse)


def test_a_verified_token_is_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project()
    ctx = _ctx(project)
    token = _token(project)
    first = _verify(ctx, token)
    _no_decoding(monkeypatch)
    again = _verify(ctx, token)
    assert again == first and again[1]["role"] == "anon"
    again[1]["role"] = "service_role"  # a caller's copy: the remembered claims stay as verified
    assert _verify(ctx, token)[1]["role"] == "anon"


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project()
    ctx = _ctx(project)
    token = _token(project, role="authenticated", exp=int(time.time()) + 5, sub="u1")
    assert _verify(ctx, token)[1]["sub"] == "u1"
    later = time.time() + 10
    monkeypatch.setattr(callers.time, "time", lambda: later)
    monkeypatch.setattr(pyjwt.api_jwt, "datetime", _Later(later))
    with pytest.raises(GatewayError, match="Token expired"):
        _verify(ctx, token)


class _Later:
    """pyjwt's clock (datetime.now), moved to `at`."""

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self, tz: Any = None) -> datetime:
        return datetime.fromtimestamp(self.at, tz=timezone.utc)


def test_a_changed_secret_or_a_deleted_project_is_checked_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project()
    ctx = _ctx(project)
    token = _token(project)
    _verify(ctx, token)
    ctx.limits.projects.put(project.id, _project(secret="t" * 40))  # the project's keys were rotated
    with pytest.raises(GatewayError, match="Invalid token signature"):
        _verify(ctx, token)
    ctx.limits.projects.invalidate(project.id)
    monkeypatch.setattr(callers, "load_project", lambda ctx, pid: None)  # and then it was deleted
    with pytest.raises(GatewayError, match="unknown project"):
        _verify(ctx, token)


def test_failures_and_not_before_tokens_are_never_remembered() -> None:
    project = _project()
    ctx = _ctx(project)
    forged = pyjwt.encode({"role": "anon", "project_id": project.id}, "x" * 40, algorithm="HS256")
    for _ in range(2):
        with pytest.raises(GatewayError, match="Invalid token signature"):
            _verify(ctx, forged)
    _verify(ctx, _token(project, nbf=int(time.time()) - 1))
    assert len(ctx.limits.tokens) == 0


def test_the_internal_token_is_reused_for_half_its_life_and_only_for_the_same_claims(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, project = _ctx(None), _project()
    now = float(int(time.time()))
    monkeypatch.setattr(rest.time, "time", lambda: now)
    user = {"role": "authenticated", "sub": "u1", "email": "a@example.com"}
    first = rest._internal_token(ctx, project, user, "p0001_authenticated")
    claims = pyjwt.decode(first, ctx.postgrest_jwt_secret, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"role": "p0001_authenticated", "project_id": project.id, "iat": int(now),
                      "exp": int(now) + 60, "app_role": "authenticated", "sub": "u1", "email": "a@example.com"}
    assert rest._internal_token(ctx, project, dict(user), "p0001_authenticated") == first
    assert rest._internal_token(ctx, project, {**user, "sub": "u2"}, "p0001_authenticated") != first
    assert rest._internal_token(ctx, project, user, "p0001_anon") != first
    now += 30  # half its life gone: a fresh one
    assert rest._internal_token(ctx, project, user, "p0001_authenticated") != first


def test_claims_that_compare_equal_but_differ_in_type_get_their_own_internal_token() -> None:
    ctx, project = _ctx(None), _project()
    tokens = {rest._internal_token(ctx, project, {"role": "authenticated", "email": email}, "p0001_authenticated")
              for email in (1, 1.0, True)}
    assert len(tokens) == 3
    emails = [pyjwt.decode(t, ctx.postgrest_jwt_secret, algorithms=["HS256"])["email"] for t in tokens]
    assert sorted(map(repr, emails)) == ["1", "1.0", "True"]


def test_a_token_cache_is_keyed_by_the_whole_token_and_bounded() -> None:
    a, b = _project(pid="prj_a"), _project(secret="t" * 40, pid="prj_b")
    ctx = _ctx(a)
    token = _token(a)
    _verify(ctx, token)
    head, payload, _ = token.split(".")
    # The same claims under another project's signature: never the remembered answer.
    other = pyjwt.encode(pyjwt.decode(token, options={"verify_signature": False}), b.jwt_secret, algorithm="HS256")
    assert other.split(".")[:2] == [head, payload]
    with pytest.raises(GatewayError, match="Invalid token signature"):
        _verify(ctx, other)
    assert ctx.limits.tokens.max_keys == limits.TOKEN_CACHE_KEYS
