"""The upload process (runtime/uploads.py): the PUTs of a deploy go to a second gateway process
when the client reached the gateway itself on loopback, to the gateway otherwise, and either
way the same route answers with the same envelopes. Its lifecycle (dies with the gateway, a
dead one hands the uploads back) is in tests/security/test_lifecycle.py."""

from __future__ import annotations

import hashlib
import os
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.local._deploy_support import anon
from tests.local._support import provision


@pytest.fixture
def project(api):
    return provision("uploads")


def _plan(api_base: str, project: dict, data: bytes, host: str | None = None) -> dict:
    headers = {"apikey": project["anon_key"], **({"Host": host} if host else {})}
    resp = httpx.post(f"{api_base}/content/v1/plans", headers=headers,
                      json={"content": [{"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}]})
    assert resp.status_code == 200, resp.text
    return resp.json()


def _port(url: str) -> int:
    return urlsplit(url).port


def _plan_from_the_upload_process(api_base: str, project: dict, data: bytes) -> dict:
    """A plan once the upload process has said its port (it starts alongside the gateway, which
    does not wait for it: until then the gateway's own URLs)."""
    deadline = time.monotonic() + 15
    while True:
        plan = _plan(api_base, project, data)
        if _port(plan["missing"][0]["parts"][0]["url"]) != _port(api_base) or time.monotonic() > deadline:
            return plan
        time.sleep(0.1)


def test_a_loopback_client_uploads_to_the_upload_process_and_the_commit_sees_it(api, project):
    data = os.urandom(3000)
    plan = _plan_from_the_upload_process(api.api_base, project, data)
    url = plan["missing"][0]["parts"][0]["url"]
    assert url.startswith("http://127.0.0.1:") and _port(url) != _port(api.api_base)
    put = httpx.put(url, content=data)
    assert put.status_code == 200 and put.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    done = httpx.post(f"{api.api_base}/content/v1/plans/{plan['plan_id']}/commit", headers=anon(project), json={})
    assert done.status_code == 200 and done.json()["committed"] == [hashlib.sha256(data).hexdigest()]
    # `localhost` is loopback too; the URL names the address the upload process listens on.
    again = _plan(api.api_base, project, os.urandom(10), host=f"localhost:{_port(api.api_base)}")
    assert _port(again["missing"][0]["parts"][0]["url"]) == _port(url)


@pytest.mark.parametrize("host", ["gw.example:8443", "127.0.0.1:1", "10.0.0.7"])
def test_a_client_through_another_host_or_port_uploads_to_the_gateway_as_it_addressed_it(api, project, host):
    """A proxy or a tunnel may forward the gateway's port and nothing else."""
    plan = _plan(api.api_base, project, os.urandom(100), host=host)
    assert plan["missing"][0]["parts"][0]["url"].startswith(f"http://{host}/_upload/")


def test_the_upload_process_answers_like_the_gateway(api, project):
    data = os.urandom(500)
    url = _plan_from_the_upload_process(api.api_base, project, data)["missing"][0]["parts"][0]["url"]
    split = urlsplit(url)
    assert split.port != _port(api.api_base)
    same_on_gateway = f"{api.api_base}{split.path}?{split.query}"
    # Another route, another method, a bad signature, the wrong length: the gateway's envelopes.
    for path, method, content in [("/no/such/route", "GET", None), (split.path + "?" + split.query, "GET", None),
                                  (split.path + "?" + split.query.replace("sig=", "sig=0"), "PUT", data),
                                  (split.path + "?" + split.query, "PUT", data + b"x")]:
        ours = httpx.request(method, f"http://127.0.0.1:{split.port}{path}", content=content)
        theirs = httpx.request(method, f"{api.api_base}{path}", content=content)
        assert ours.status_code == theirs.status_code and ours.status_code >= 400, path
        a, b = ours.json(), theirs.json()
        a.pop("trace_id", None), b.pop("trace_id", None)
        assert a == b
    # A browser's preflight and its PUT: the same CORS answers as the gateway's.
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "PUT"}
    ours = httpx.options(url, headers=preflight)
    theirs = httpx.options(same_on_gateway, headers=preflight)
    assert ours.status_code == theirs.status_code == 200
    cors = lambda r: {k: v for k, v in r.headers.items() if k.startswith("access-control-")}  # noqa: E731
    assert cors(ours) == cors(theirs) and cors(ours)["access-control-allow-origin"] == "*"
    put = httpx.put(url, content=data, headers={"Origin": "https://app.example"})
    assert put.status_code == 200 and put.headers["access-control-allow-origin"] == "*"
    assert httpx.put(same_on_gateway, content=data).status_code == 200  # the gateway still takes it
