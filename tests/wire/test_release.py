"""The ReleaseSpec rules both sides share (wire/release.py), and that the CLI and the gateway
really apply the same one: a path one refuses, the other refuses too."""

from __future__ import annotations

import pytest

from run402_cli.deploy.spec import check_release_path
from run402_cli.errors import Run402Error
from run402_cli.local.deploy.apply_spec import validate_spec
from run402_cli.local.errors import GatewayError
from run402_cli.wire.release import release_path_problem, route_pattern_problem, subdomain_problem

REFUSED = ["", "/abs", "a\\b", "dir/", "a//b", "./a", "a/../b", "..", "a\x00b", "tab\there",
           "_cas", "_staging", "_cas/ab/cd", "_staging/x", "x" * 1025]
ACCEPTED = ["index.html", "a/b/c.txt", "_casual/x", "x/_cas/y", "_stagingarea", ".well-known/a", "é.html"]


@pytest.mark.parametrize("path", REFUSED)
def test_refused_paths_are_refused_by_the_rule_the_cli_and_the_gateway(path):
    assert release_path_problem(path) is not None
    with pytest.raises(Run402Error):
        check_release_path(path, "site.replace")
    spec = {"project": "prj_1", "site": {"replace": {path: {"sha256": "a" * 64, "size": 1}}}}
    with pytest.raises(GatewayError) as info:
        validate_spec(spec)
    assert info.value.code == "INVALID_SPEC"


@pytest.mark.parametrize("path", ACCEPTED)
def test_accepted_paths_pass_both_sides(path):
    assert release_path_problem(path) is None
    assert check_release_path(path, "site.replace") == path
    validate_spec({"project": "prj_1", "site": {"replace": {path: {"sha256": "a" * 64, "size": 1}}}})


@pytest.mark.parametrize("pattern, ok", [("/", True), ("/a", True), ("/a/*", True), ("a", False),
                                         ("/a*", False), ("/*/a", False), ("/a?b", False), ("/a/../b", False)])
def test_route_patterns(pattern, ok):
    assert (route_pattern_problem(pattern) is None) is ok


@pytest.mark.parametrize("name, code", [("my-app", None), ("ab", "INVALID_SUBDOMAIN"), ("-ab", "INVALID_SUBDOMAIN"),
                                        ("www", "SUBDOMAIN_RESERVED"), ("prj-1", "SUBDOMAIN_RESERVED"),
                                        ("pr-1733-4", "SUBDOMAIN_RESERVED")])
def test_subdomains(name, code):
    problem = subdomain_problem(name)
    assert (problem[0] if problem else None) == code
