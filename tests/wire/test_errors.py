"""The error envelope, written by the gateway and read by the CLI through one module."""

from __future__ import annotations

import pytest

from run402_cli.errors import ApiError
from run402_cli.local.errors import DatabaseUnavailable, GatewayError
from run402_cli.wire.errors import error_body, read_error


def test_a_body_has_the_fields_clients_read_and_leaves_unset_ones_out() -> None:
    body = error_body("Project prj_1 not found", "PROJECT_NOT_FOUND")
    assert body["error"] == body["message"] == "Project prj_1 not found"
    assert body["code"] == "PROJECT_NOT_FOUND"
    assert body["retryable"] is False and body["safe_to_retry"] is True and body["next_actions"] == []
    assert body["trace_id"].startswith("trc_") and len(body["trace_id"]) == 20
    assert not {"category", "hint", "details"} & set(body)
    assert error_body("m", "X")["trace_id"] != body["trace_id"]


def test_extra_fields_come_before_the_trace_id_and_cannot_replace_it() -> None:
    body = error_body("m", "X", extra={"mutation_state": "none", "trace_id": "forged"})
    assert body["mutation_state"] == "none" and body["trace_id"].startswith("trc_")


@pytest.mark.parametrize("body, said", [
    ({"message": "m", "error": "e", "code": "C", "retryable": True, "safe_to_retry": False},
     ("m", "C", True, False)),
    ({"error": "older servers say only error"}, ("older servers say only error", None, None, None)),
    ({"message": "", "code": 7, "retryable": "yes"}, (None, None, None, None)),  # mistyped: silent
    ("<html>502 Bad Gateway</html>", (None, None, None, None)),
    (None, (None, None, None, None)),
    ([{"code": "C"}], (None, None, None, None)),
])
def test_a_reader_takes_only_what_a_body_says(body, said) -> None:
    got = read_error(body)
    assert (got.message, got.code, got.retryable, got.safe_to_retry) == said


def test_what_the_gateway_sends_the_cli_reports() -> None:
    sent = GatewayError(409, "BASE_RELEASE_CONFLICT", "Another deploy went first",
                        category="deploy", retryable=True, hint="plan again").body()
    err = ApiError(409, sent, context="committing the plan")
    assert err.code == "BASE_RELEASE_CONFLICT" and err.retryable is True
    env = err.to_envelope()
    assert env["message"] == "Another deploy went first" and env["http"] == 409
    assert env["hint"] == "plan again" and env["trace_id"] == sent["trace_id"]


def test_a_database_outage_says_retry_after() -> None:
    body = DatabaseUnavailable(safe_to_retry=False).body()
    assert body["code"] == "DATABASE_UNAVAILABLE" and body["retryable"] is True
    assert body["mutation_state"] == "unknown" and body["retry_after_seconds"] == 1
