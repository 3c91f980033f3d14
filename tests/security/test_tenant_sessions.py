"""Tenant sessions are reused (data/tenant_sql.py): a project's next statement may run on the
same PostgreSQL backend as its last one. What must hold, checked on the real gateway: nothing
a statement leaves in its session reaches the next one, the role, schema and limits are pinned
again, a session never serves another project, and a dead one is replaced, not reported."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import STATEMENT_TIMEOUT_S
from tests.local._support import provision, sql

pytestmark = pytest.mark.usefixtures("api")


def _one(project: dict[str, Any], query: str) -> dict[str, Any]:
    return sql(project, query)["rows"][0]


@pytest.fixture
def project() -> dict[str, Any]:
    return provision("sessions")


def test_nothing_a_statement_leaves_in_its_session_reaches_the_next(project):
    """(Temporary tables are refused to tenants outright: no TEMP privilege.)"""
    first = _one(project, "select pg_backend_pid() as pid")
    sql(project, "prepare sneaky as select 1; "
                 "select pg_advisory_lock(402); listen tenant_channel; "
                 "set application_name = 'left-behind'; declare c cursor with hold for select 1")
    after = _one(project, "select pg_backend_pid() as pid, current_setting('application_name') as app, "
                          "(select count(*) from pg_prepared_statements) as prepared, "
                          "(select count(*) from pg_cursors where is_holdable) as cursors, "
                          "(select count(*) from pg_locks where locktype = 'advisory' "
                          " and pid = pg_backend_pid()) as advisory, "
                          "(select count(*) from pg_listening_channels()) as listening")
    assert after["pid"] == first["pid"], "the session was not reused: this test proves nothing"
    assert after == {"pid": first["pid"], "app": "", "prepared": 0, "cursors": 0, "advisory": 0,
                     "listening": 0}


def test_one_session_serves_many_statements_in_a_row(project):
    """Past psycopg's prepare threshold (5 runs of one query) too: the reset between uses once
    failed every 7th time, and each failure cost a fresh login. A statement the tenant repeats
    is prepared by psycopg and wiped by the reset; it must keep working all the same."""
    pids = {_one(project, "select pg_backend_pid() as pid, 1 as one")["pid"] for _ in range(15)}
    assert len(pids) == 1


def test_role_schema_and_limits_are_pinned_on_every_reuse(project):
    slot = project["schema_slot"]
    for _ in range(3):
        row = _one(project, "select session_user as login, current_user as acting, current_schemas(false) as path, "
                            "current_setting('statement_timeout') as timeout, current_setting('work_mem') as mem")
        assert row == {"login": f"{slot}_sql", "acting": f"{slot}_owner", "path": [slot],
                       "timeout": f"{STATEMENT_TIMEOUT_S}s", "mem": "16MB"}


def test_a_session_never_serves_another_project(project):
    other = provision("sessions-other")
    mine = {_one(project, "select pg_backend_pid() as pid")["pid"] for _ in range(3)}
    theirs = [_one(other, "select pg_backend_pid() as pid, session_user as login") for _ in range(3)]
    assert not mine & {t["pid"] for t in theirs}
    assert {t["login"] for t in theirs} == {f"{other['schema_slot']}_sql"}


def test_after_an_error_or_a_killed_statement_the_next_one_just_works(project):
    with pytest.raises(Exception):
        sql(project, "select * from no_such_table")
    assert _one(project, "select 1 as ok") == {"ok": 1}
    with pytest.raises(Exception):  # outlives the statement limit: cancelled
        sql(project, f"select pg_sleep({STATEMENT_TIMEOUT_S + 4})")
    assert _one(project, "select 2 as ok") == {"ok": 2}


def test_a_deleted_projects_sessions_die_with_it(project):
    """Deletion terminates the project's logins, pooled ones included; a new project with the
    next statement gets a fresh login of its own."""
    pid = _one(project, "select pg_backend_pid() as pid")["pid"]
    project["client"].request("DELETE", f"/projects/v1/{project['project_id']}", bearer=project["service_key"])
    watcher = provision("sessions-watcher")
    alive = _one(watcher, f"select count(*) as n from pg_stat_activity where pid = {int(pid)}")
    assert alive == {"n": 0}
