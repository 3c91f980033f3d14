"""The gateway's hot lane (app.HotLane): uploads and REST calls skip the middleware that would
change nothing for them, and answer exactly as the long way does. A site host or a browser's
request still goes the long way."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from run402_cli.local.app import HotLane
from run402_cli.local.errors import GatewayError
from tests.local._support import anon_headers, expose, provision, sql

BAD_UPLOAD = "/_upload/upl_0123456789abcdef/1?expires=9999999999&len=3&sig=00"


def _read_responses(conn: socket.socket, n: int) -> bytes:
    data = b""
    while data.count(b"HTTP/1.1 ") < n or not data.rstrip().endswith((b"]", b"}")):
        chunk = conn.recv(65536)
        assert chunk, f"connection closed after: {data!r}"
        data += chunk
    return data


def test_an_upload_refused_in_the_lane_is_the_envelope_and_the_connection_stays_usable(api):
    project = provision("lane")
    sql(project, "create table items (id int primary key); insert into items values (7)")
    expose(project, {"version": "1", "tables": [{"name": "items", "expose": True,
                                                 "policy": "public_read_authenticated_write"}]})
    port = int(api.api_base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"PUT {BAD_UPLOAD} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc"
                     f"GET /rest/v1/items?select=id HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"apikey: {project['anon_key']}\r\n\r\n".encode())
        data = _read_responses(conn, 2)
    first, second = data.split(b"HTTP/1.1 ")[1:3]
    assert first.startswith(b"403") and b'"code":"UPLOAD_URL_INVALID"' in first.replace(b" ", b"")
    assert second.startswith(b"200") and second.rstrip().endswith(b'[{"id":7}]')


def test_a_site_host_or_a_wrong_method_goes_the_long_way(api):
    on_site = httpx.put(f"{api.api_base}{BAD_UPLOAD}", content=b"abc", headers={"Host": "nosuch.localhost"})
    assert on_site.status_code == 404 and on_site.text.startswith("No site at nosuch.localhost")
    wrong_method = httpx.get(f"{api.api_base}{BAD_UPLOAD}")
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == "METHOD_NOT_ALLOWED"


def test_a_browsers_rest_call_still_gets_its_cors_headers(api):
    project = provision("lane-cors")
    resp = httpx.get(f"{api.api_base}/rest/v1/", headers={**anon_headers(project), "Origin": "http://app.example"})
    assert resp.headers["access-control-allow-origin"] == "*"


# The lane on its own, around a stand-in for the rest of the stack.

async def _hot(request):  # type: ignore[no-untyped-def]
    what = request.path_params["what"]
    if what == "gateway-error":
        raise GatewayError(409, "SOME_CONFLICT", "conflicted")
    if what == "bug":
        raise RuntimeError("a bug")
    return PlainTextResponse(f"hot {what}")


async def _long_way(scope, receive, send):  # type: ignore[no-untyped-def]
    await PlainTextResponse("long way")(scope, receive, send)


def _lane_app() -> Starlette:
    route = Route("/hot/{what}", _hot, methods=["GET"])
    app = Starlette(routes=[route], middleware=[Middleware(HotLane, routes=[route])])
    app.middleware_stack = app.build_middleware_stack()
    # Swap what lies under the lane for the stand-in: what reaches it went the long way.
    lane = app.middleware_stack.app
    assert isinstance(lane, HotLane)
    lane.app = _long_way
    return app


def _get(path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One GET through the app as ASGI, the way uvicorn calls it."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in
                         {"host": "127.0.0.1", **(headers or {})}.items()]}
    asyncio.run(_lane_app()(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize(("path", "headers", "status", "text"), [
    ("/hot/a", {}, 200, "hot a"),
    ("/hot/a", {"Origin": "http://app.example"}, 200, "long way"),
    ("/hot/a", {"host": "x.localhost"}, 200, "long way"),
    ("/cold", {}, 200, "long way"),
])
def test_only_exact_matches_take_the_lane(path, headers, status, text):
    assert _get(path, headers) == (status, text.encode())


def test_errors_in_the_lane_are_the_usual_envelopes():
    status, body = _get("/hot/gateway-error")
    assert status == 409 and json.loads(body)["code"] == "SOME_CONFLICT"
    status, body = _get("/hot/bug")
    assert status == 500 and json.loads(body)["code"] == "INTERNAL_ERROR" and b"a bug" not in body
