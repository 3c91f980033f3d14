"""The bookkeeping of idle tenant sessions (data/tenant_sql._IdleSessions), without a database:
per-login and total caps, oldest evicted first, expiry. Behaviour on the real gateway (reset,
isolation, recovery) is in tests/security/test_tenant_sessions.py."""

from __future__ import annotations

import pytest

from run402_cli.local.data import tenant_sql
from run402_cli.local.data.tenant_sql import _IdleSessions


class FakeConn:
    def __init__(self, name: str) -> None:
        self.name, self.closed = name, False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(tenant_sql.time, "monotonic", lambda: now[0])
    return now


def test_a_login_gets_back_only_its_own_sessions(clock):
    idle = _IdleSessions()
    a, b = FakeConn("a"), FakeConn("b")
    idle.give("login-a", a)
    idle.give("login-b", b)
    assert idle.take("login-a") is a and idle.take("login-a") is None
    assert idle.take("login-b") is b and len(idle) == 0


def test_at_most_two_per_login_and_eight_in_all_the_oldest_going_first(clock):
    idle = _IdleSessions()
    per_login = [FakeConn(f"x{i}") for i in range(3)]
    for conn in per_login:
        idle.give("login-x", conn)
    assert [c.closed for c in per_login] == [False, False, True] and len(idle) == 2
    others = []
    for i in range(7):
        clock[0] += 1
        others.append(FakeConn(f"p{i}"))
        idle.give(f"login-{i}", others[-1])
    assert len(idle) == 8
    assert per_login[0].closed and not per_login[1].closed  # the oldest of all went first
    assert not any(c.closed for c in others)


def test_sessions_idle_too_long_are_closed_not_reused(clock):
    idle = _IdleSessions()
    old, dead = FakeConn("old"), FakeConn("dead")
    idle.give("login-a", old)
    idle.give("login-b", dead)
    dead.closed = True  # e.g. the server ended it
    assert idle.take("login-b") is None
    clock[0] += _IdleSessions.IDLE_SECONDS + 1
    assert idle.take("login-a") is None and old.closed and len(idle) == 0
