"""build.py on its own: the bundle size rules (a warning past 10 MB, refused past 25 MB) and
the registry-only rule for --deps. Real esbuild; no gateway."""

from __future__ import annotations

import pytest

from run402_cli.local.errors import GatewayError
from run402_cli.local.functions.build import build_function, registry_dep_problem


def _module(size: int) -> bytes:
    return b"export default async () => new Response(" + b'"' + b"x" * size + b'"' + b");"


def test_a_big_bundle_warns_and_a_huge_one_is_refused():
    small = build_function({"index.js": _module(10)}, "index.js")
    assert small.warnings == [] and small.bundle.startswith(b"import{createRequire")
    big = build_function({"index.js": _module(11 * 1024 * 1024)}, "index.js")
    assert any("over 10 MB" in w for w in big.warnings)
    with pytest.raises(GatewayError) as refused:
        build_function({"index.js": _module(26 * 1024 * 1024)}, "index.js")
    assert refused.value.code == "FUNCTION_TOO_LARGE"


@pytest.mark.parametrize("spec", ["zod@file:/etc", "x@git+https://example.com/x.git", "x@https://e.com/x.tgz",
                                  "x@../y", "img@npm:sharp@0.33", "@run402/functions", "BadName"])
def test_deps_come_from_the_registry_by_name_and_range(spec):
    assert registry_dep_problem(spec) is not None


@pytest.mark.parametrize("spec", ["zod", "zod@^3", "@scope/pkg@1.2.3", "left-pad@latest", "a@>=1<2", "b@1.x||2.x"])
def test_plain_registry_specs_pass(spec):
    assert registry_dep_problem(spec) is None
