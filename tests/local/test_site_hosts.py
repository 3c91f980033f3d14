"""One rule decides which requests are for a site (local/web/hosts.py): site dispatch, the body
caps and the hot lane all ask it, so no Host is a site for one layer and not for another."""

from __future__ import annotations

import pytest

from run402_cli.local.http_body import ROUTED_CAP, UNAUTHENTICATED_CAP, body_cap, is_site_host
from run402_cli.local.web.hosts import site_hostname, site_hostname_of


@pytest.mark.parametrize(("host", "site"), [
    ("foo.localhost", "foo.localhost"),
    ("Foo.LocalHost:4020", "foo.localhost"),
    ("dpl-abc.localhost.", "dpl-abc.localhost"),
    (" foo.localhost ", "foo.localhost"),
    ("localhost", None),
    ("localhost:4020", None),
    (".localhost", None),
    (".localhost:4020", None),
    ("127.0.0.1:4020", None),
    ("[::1]:4020", None),
    ("foo.localhost.example.com", None),
    ("", None),
])
def test_which_hosts_are_sites(host, site):
    assert site_hostname(host) == site
    headers = [(b"host", host.encode("latin-1"))]
    assert site_hostname_of(headers) == site
    assert is_site_host(headers) is (site is not None)
    # The routed cap exactly for a site; the unauthenticated cap for anything else here.
    assert body_cap("/anything", headers) == (ROUTED_CAP if site else UNAUTHENTICATED_CAP)


def test_the_first_host_header_is_the_one_that_counts():
    assert site_hostname_of([(b"host", b"a.localhost"), (b"host", b"127.0.0.1")]) == "a.localhost"
    assert site_hostname_of([(b"host", b"127.0.0.1"), (b"host", b"a.localhost")]) is None
    assert site_hostname_of([(b"accept", b"*/*")]) is None
