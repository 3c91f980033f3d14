"""The import rules of DESIGN.md, checked by reading the code (ast) and by running it.

Why: start-up time and layering rot silently. One top-level `import eth_account` in a command
module costs every `run402 --help`; one `from run402_cli.local import ...` outside
`commands/local.py` drags the gateway into the client. These tests name the file and line.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

PKG = Path(__file__).resolve().parent.parent / "run402_cli"
COMMANDS = sorted((PKG / "commands").rglob("*.py"))
HEAVY = ("eth_account", "x402", "starlette", "uvicorn", "psycopg", "run402_cli.local.app")
# Not at the top of a command module (inside a function is fine): STYLE §5.4 (a).
TOP_LEVEL_BANNED = (
    "httpx", "eth_account", "run402_cli.api", "run402_cli.wallet", "run402_cli.local",
    "pydantic", "rich",
)


def _rel(path: Path) -> str:
    return str(path.relative_to(PKG.parent))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _imports(path: Path, *, top_level_only: bool = False) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module, imported names) for each import. `from run402_cli import api`
    is reported as module `run402_cli.api` too, so both spellings are caught. With
    `top_level_only`, imports inside functions and `if TYPE_CHECKING:` blocks are skipped."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]

    def walk(nodes: list[ast.stmt]) -> Iterator[ast.stmt]:
        for node in nodes:
            yield node
            if top_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if top_level_only and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                yield from walk(node.orelse)
                continue
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from walk([child])
                elif isinstance(child, ast.excepthandler):
                    yield from walk(child.body)

    for node in walk(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [a.name for a in node.names]
            yield node.lineno, module, names
            for name in names:
                yield node.lineno, f"{module}.{name}", []


# --- (a) what `--help` loads ---------------------------------------------------------------

_PROBE = """
import contextlib, io, json, sys
from run402_cli.app import run
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = run({argv!r})
assert code == 0 and "\\nUsage:\\n  run402" in out.getvalue(), (code, out.getvalue())
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("argv", [["--help"], ["projects", "--help"]], ids=" ".join)
def test_help_does_not_import_heavy_modules(argv: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "RUN402_CONFIG_DIR": str(tmp_path / "config")}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.format(argv=argv)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    modules = json.loads(proc.stdout)
    loaded = sorted(m for m in modules if any(_under(m, h) for h in HEAVY))
    assert not loaded, f"`run402 {' '.join(argv)}` imported {loaded}"


_NETWORK_PROBE = (
    "import contextlib, io, json, sys\n"
    "from run402_cli import app\n"
    "with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):\n"
    "    sys.argv = ['run402', 'service', 'status']  # a closed port: NETWORK_ERROR\n"
    "    app.main()\n"
    "print(json.dumps(sorted(m for m, mod in sys.modules.items() if mod is not None)))\n"
)


def _network_command_modules(tmp_path: Path, **env_extra: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(RUN402_CONFIG_DIR=str(tmp_path / "config"), RUN402_API_BASE="http://127.0.0.1:9", **env_extra)
    proc = subprocess.run([sys.executable, "-c", _NETWORK_PROBE], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_network_command_speaks_http_without_httpx(tmp_path: Path) -> None:
    """The CLI's calls go out on the socket transport: httpx + httpcore (~60 ms), and
    http.client with the email package it parses headers with (~25 ms), are not imported."""
    modules = _network_command_modules(tmp_path)
    assert "run402_cli.api.transport" in modules, "the probe must reach the network layer"
    loaded = [m for m in modules if any(_under(m, x) for x in ("httpx", "httpcore", "h11", "http", "email"))]
    assert not loaded, loaded


def test_behind_a_proxy_httpx_loads_without_its_unused_extras(tmp_path: Path) -> None:
    """With a proxy set, the calls go through httpx (which honours it). Its package init imports
    its own CLI (rich, pygments, click: ~100 ms) and httpcore's its HTTP/2 (h2) whenever they
    are installed; the CLI's entry point keeps them out."""
    modules = _network_command_modules(tmp_path, HTTP_PROXY="http://127.0.0.1:9", NO_PROXY="")
    assert "httpx" in modules, "the probe must reach httpx"
    assert not [m for m in modules if any(_under(m, x) for x in ("rich", "pygments", "h2"))]


@pytest.mark.parametrize("argv, group", [(["projects", "list"], "projects"), (["status"], "status"),
                                         (["deploy", "list", "--bogus"], "deploy")])
def test_a_command_imports_only_its_own_group(argv: list[str], group: str, tmp_path: Path) -> None:
    probe = ("import contextlib, io, json, sys\n"
             "from run402_cli.app import run\n"
             "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
             f"    run({argv!r})\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith('run402_cli.commands.'))))\n")
    env = {**os.environ, "RUN402_CONFIG_DIR": str(tmp_path / "config")}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    groups = {m.split(".")[2] for m in json.loads(proc.stdout)} - {"_options"}
    assert groups == {group}, groups


# --- (b) command modules stay light, and use only the public api ---------------------------


@pytest.mark.parametrize("path", COMMANDS, ids=_rel)
def test_command_module_has_no_heavy_top_level_imports(path: Path) -> None:
    bad = [
        f"{_rel(path)}:{line}: imports {module} at module level (import it inside the function)"
        for line, module, _ in _imports(path, top_level_only=True)
        if any(_under(module, b) for b in TOP_LEVEL_BANNED)
    ]
    assert not bad, "\n".join(bad)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@pytest.mark.parametrize("path", COMMANDS, ids=_rel)
def test_command_module_uses_only_public_api_names(path: Path) -> None:
    bad = []
    api_aliases: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for line, module, names in _imports(path):
        if not _under(module, "run402_cli.api"):
            continue
        parts = module.split(".")[2:]
        bad += [f"{_rel(path)}:{line}: {module}" for p in parts if _is_private(p)]
        bad += [f"{_rel(path)}:{line}: {module}.{n}" for n in names if _is_private(n)]
    for node in ast.walk(tree):  # names bound to api modules: `from run402_cli.api import tiers`
        if isinstance(node, ast.ImportFrom) and node.module and _under(node.module, "run402_cli.api"):
            api_aliases.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            api_aliases.update(a.asname for a in node.names if a.asname and _under(a.name, "run402_cli.api"))
    for node in ast.walk(tree):  # ... and then `tiers._helper`
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in api_aliases and _is_private(node.attr)):
            bad.append(f"{_rel(path)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not bad, "private run402_cli.api names used:\n" + "\n".join(dict.fromkeys(bad))


# --- (c) the gateway is reached only through `run402 local` --------------------------------


def _imports_local(path: Path) -> Iterator[str]:
    for line, module, _ in _imports(path):
        if _under(module, "run402_cli.local"):
            yield f"{_rel(path)}:{line}: {module}"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):  # importlib.import_module("...")
        if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str) and _under(node.args[0].value, "run402_cli.local")):
            yield f"{_rel(path)}:{node.lineno}: {node.args[0].value!r}"


def test_only_commands_local_imports_the_gateway() -> None:
    allowed = {PKG / "commands" / "local.py"}
    bad = [
        hit
        for path in sorted(PKG.rglob("*.py"))
        if path not in allowed
        and not path.is_relative_to(PKG / "local")
        and not path.is_relative_to(PKG / "commands" / "local")
        for hit in _imports_local(path)
    ]
    assert not bad, "only run402_cli/commands/local.py may import run402_cli.local:\n" + "\n".join(bad)


def test_gateway_never_imports_commands() -> None:
    bad = [
        f"{_rel(path)}:{line}: {module}"
        for path in sorted((PKG / "local").rglob("*.py"))
        for line, module, _ in _imports(path)
        if _under(module, "run402_cli.commands")
    ]
    assert not bad, "run402_cli/local must not import run402_cli.commands:\n" + "\n".join(bad)


# --- (d) each api module declares its public names -----------------------------------------

API = sorted(p for p in (PKG / "api").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", API, ids=_rel)
def test_api_module_defines_all(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    targets = [
        t.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    ]
    assert "__all__" in targets, f"{_rel(path)} must define __all__"
