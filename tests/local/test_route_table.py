"""The gateway's shape: one route table whose every route some test exercises, and rooms that
stay small (run402_cli/local/: at most 12 modules a folder, none over 400 lines).

"Exercised" is checked cheaply, from the test sources, not at run time:
- a test names the route's path: every literal piece of the template in order, each parameter
  filled by anything (`{pid}`, `prj_1_2`, `{p['id']}`), and the path ending there; or
- the route is reached through a CLI command or an `api/` function (whose code builds the
  path), listed in THROUGH_CLIENT below, and a test that runs against the real gateway (takes
  the `api` or `gateway` fixture) makes that call.
A test naming a path proves neither the method nor the outcome; what it guards against is a
route nobody ever calls, which is what a new route without a test looks like.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from run402_cli.local.app import build_app

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
LOCAL = ROOT / "run402_cli" / "local"
API = ROOT / "run402_cli" / "api"

MAX_MODULES = 12
MAX_LINES = 400

# (method, path template) -> the call, as a regex, a gateway test makes to reach it.
THROUGH_CLIENT = {
    ("GET", "/tiers/v1"): r"cli\(\s*['\"]projects['\"],\s*['\"]quote['\"]",
    ("GET", "/wallets/v1/{wallet}/projects"): r"\.list_for_wallet\(",
    ("GET", "/projects/v1/admin/{id}/schema"): r"cli\(\s*['\"]projects['\"],\s*['\"]schema['\"]",
    ("GET", "/projects/v1/admin/{id}/usage"): r"cli\(\s*['\"]projects['\"],\s*['\"]usage['\"]",
    ("POST", "/auth/v1/magic-link"): r"cli\(\s*['\"]auth['\"],\s*['\"]magic-link['\"]",
    ("PUT", "/auth/v1/user/password"): r"cli\(\s*['\"]auth['\"],\s*['\"]set-password['\"]",
    ("POST", "/projects/v1/admin/{id}/promote-user"): r"cli\(\s*['\"]projects['\"],\s*['\"]promote-user['\"]",
    ("POST", "/projects/v1/admin/{id}/demote-user"): r"cli\(\s*['\"]projects['\"],\s*['\"]demote-user['\"]",
    ("PATCH", "/projects/v1/admin/{id}/functions/{name}"): r"cli\(\s*['\"]functions['\"],\s*['\"]update['\"]",
    ("DELETE", "/projects/v1/admin/{id}/functions/{name}"): r"cli\(\s*['\"]functions['\"],\s*['\"]delete['\"]",
}
GATEWAY_FIXTURES = {"api", "gateway"}


def _routes() -> list[tuple[str, str]]:
    """(methods, path template) of every route of the app, in table order."""
    app = build_app(None)  # type: ignore[arg-type]  # the table is read here, never served
    return [(",".join(sorted(r.methods - {"HEAD"})), r.path) for r in app.routes]


def _path_pattern(template: str) -> re.Pattern[str]:
    out = ""
    for literal, param in re.findall(r"([^{]*)(\{[^}]*\})?", template):
        out += re.escape(literal)
        if param:
            out += ".*" if param.endswith(":path}") else r"(?:\{[^}]*\}|[^\s\"'/?{}]+)"
    if not template.endswith(":path}"):
        out += r"(?=[\"'?`\s)#]|$)"  # the path ends here: `/auth/v1/user` is not `/auth/v1/user/password`
    return re.compile(out)


def _test_sources() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in sorted(TESTS.rglob("*.py")) if p != Path(__file__).resolve()}


def _gateway_test_functions(sources: dict[Path, str]) -> list[str]:
    """The source of every function in tests/ that takes the real gateway as a fixture."""
    found = []
    for path, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    GATEWAY_FIXTURES & {a.arg for a in node.args.args}:
                found.append(ast.get_source_segment(text, node) or "")
    return found


def test_every_route_is_exercised_by_a_test() -> None:
    sources = _test_sources()
    gateway_tests = _gateway_test_functions(sources)
    missing = []
    for methods, template in _routes():
        if any(_path_pattern(template).search(text) for text in sources.values()):
            continue
        call = next((c for (m, t), c in THROUGH_CLIENT.items() if t == template and m in methods.split(",")), None)
        if call is not None and any(re.search(call, fn) for fn in gateway_tests):
            continue
        missing.append(f"{methods} {template}")
    assert not missing, "routes no test exercises (add a test, or a THROUGH_CLIENT entry):\n" + "\n".join(missing)


def test_through_client_entries_are_real_routes_built_by_the_client() -> None:
    """A stale entry would excuse a route that no longer exists, or name a call that cannot reach it."""
    table = {(m, t) for methods, t in _routes() for m in methods.split(",")}
    api_source = "\n".join(p.read_text(encoding="utf-8") for p in API.glob("*.py"))
    for (method, template), _call in THROUGH_CLIENT.items():
        assert (method, template) in table, f"{method} {template} is not in the route table"
        last_literal = [piece for piece in re.split(r"\{[^}]*\}", template) if piece.strip("/")][-1]
        assert last_literal.rstrip("/").rsplit("/", 1)[-1] in api_source, \
            f"no run402_cli/api module builds {template}"


def test_the_table_has_no_duplicate_routes() -> None:
    routes = _routes()
    pairs = [(m, t) for methods, t in routes for m in methods.split(",")]
    assert len(pairs) == len(set(pairs)), sorted(p for p in pairs if pairs.count(p) > 1)


def test_rooms_stay_small() -> None:
    """No folder of run402_cli/local holds more than 12 modules (besides its __init__.py), and no
    module there is over 400 lines: a newcomer reads the architecture off the folder list."""
    crowded, long = [], []
    for folder in sorted({p.parent for p in LOCAL.rglob("*.py")}):
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        if len(modules) > MAX_MODULES:
            crowded.append(f"{folder.relative_to(ROOT)}: {len(modules)} modules")
    for path in sorted(LOCAL.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not crowded and not long, "\n".join(crowded + long)
