"""The generated docs stay in step with the command tree, and every command documents itself.

Why: agents read `llms-cli.txt` and `--help`, not the source (STYLE §2.3, §2.5). A command
without help or an example, or a reference that lags the tree, is a bug an agent pays for.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from contextlib import redirect_stderr, redirect_stdout

import pytest

from run402_cli.app import run
from run402_cli.help import split_doc
from tests._devtools import load_script

_docs = load_script("gen_docs")

REGEN = f"run: {_docs.REGEN}"
NODES = _docs.tree()
LEAVES = [n for n in NODES if not n.children]


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return _docs.render()


def test_generated_files_are_fresh(rendered: dict[str, str]) -> None:
    assert sorted(rendered) == sorted(_docs.FILES)
    stale = _docs.check(_docs.ROOT, rendered)
    assert not stale, f"stale generated files {stale}; {REGEN}"


def test_render_is_deterministic(rendered: dict[str, str]) -> None:
    assert _docs.render() == rendered, REGEN


@pytest.mark.parametrize("path", [n.path[1:] for n in NODES], ids=[n.name for n in NODES])
def test_help_exits_0_on_stdout(path: tuple[str, ...]) -> None:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run([*path, "--help"])
    assert code == 0, err.getvalue()
    assert err.getvalue() == ""
    name = " ".join(("run402", *path))
    text = out.getvalue()
    # the layout agents read (as the official CLI's): the first line names the command and
    # what it does, then the usage; examples last, copied as written
    first, _, rest = text.partition("\n")
    assert first.startswith(f"{name} — ") and len(first) > len(name) + 5, first
    assert rest.startswith(f"\nUsage:\n  {name} "), rest[:200]
    examples = text.split("\nExamples:\n", 1)[1].splitlines()
    assert examples and all(line.startswith("  ") and len(line) > 2 for line in examples), examples
    node = next(n for n in NODES if n.path[1:] == path)
    if node.children:  # a group lists every subcommand with its whole first sentence
        listing = text.split("Commands:\n" if not path else "Subcommands:\n", 1)[1]
        listing = listing.split("\n\n", 1)[0]
        flat = " ".join(listing.split())
        for child in node.children:
            assert f"\n  {child} " in "\n" + listing, child
            summary = split_doc(next(n for n in NODES if n.path[1:] == (*path, child)).doc)[0]
            assert f"{child} {summary}" in flat, (child, summary)  # never cut short
    else:
        for line in node.doc.splitlines():
            if line.startswith("Example:"):
                assert "  " + line[len("Example:"):].strip() in examples


@pytest.mark.parametrize("node", LEAVES, ids=[n.name for n in LEAVES])
def test_command_is_documented(node: _docs.Node) -> None:
    assert node.doc.strip(), f"{node.name}: no docstring"
    assert "Example:" in node.doc, f"{node.name}: the docstring needs an 'Example:' line"
    reference = (_docs.ROOT / "llms-cli.txt").read_text(encoding="utf-8")
    heading = f"\n\n{node.name}\n{'-' * len(node.name)}\n"
    assert heading in reference, f"{node.name} is missing from llms-cli.txt; {REGEN}"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["run402", ""], {"projects", "local"}),
        (["run402", "projects", ""], {"list", "provision"}),
        (["run402", "local", "logs", "--"], {"--lines", "--service", "--help"}),
        (["run402", "local", "logs", "-n", "5", "--s"], {"--service"}),
    ],
)
def test_bash_completion(words: list[str], expected: set[str]) -> None:
    script = (
        f"source {_docs.ROOT / 'completions/run402.bash'}\n"
        f"COMP_WORDS=({' '.join(_docs._sq(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        '_run402; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True, timeout=30)
    assert expected <= set(proc.stdout.split()), proc.stdout + proc.stderr


# --- the pre-rendered --help (run402_cli/help_text.py) ---------------------------------------


def _run(args: list[str]) -> str:
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        assert run(args) == 0
    return out.getvalue()


@pytest.mark.parametrize("columns", ["80", "200", None])
def test_stored_help_is_what_typer_prints(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    from run402_cli import app

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)  # a pipe: no terminal, counts as 80
    else:
        monkeypatch.setenv("COLUMNS", columns)
    for node in NODES:
        args = [*node.path[1:], "--help"]
        assert app.pregenerated_help(args) is not None, node.name
        rendered = io.StringIO()
        with redirect_stdout(rendered):
            assert app.render(args) == 0
        assert _run(args) == rendered.getvalue(), node.name


def test_a_narrow_terminal_gets_help_wrapped_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from run402_cli import app

    monkeypatch.setenv("COLUMNS", "60")
    assert app.pregenerated_help(["projects", "--help"]) is None
    text = _run(["projects", "--help"])
    assert text.startswith("run402 projects — ")
    wrapped = [ln for ln in text.splitlines()[1:] if not ln.startswith("  run402 ")]  # examples stay whole
    assert max(map(len, wrapped)) <= 58


@pytest.mark.parametrize("args", [
    ["projects", "provision", "--name", "x", "--help"],  # flags before --help: Typer decides
    ["projects", "nope", "--help"],  # not a command path
    ["--help", "projects"],
])
def test_other_help_requests_go_through_typer(args: list[str]) -> None:
    from run402_cli import app

    assert app.pregenerated_help(args) is None


def test_help_imports_neither_typer_nor_a_command_module() -> None:
    probe = ("import contextlib, io, sys\n"
             "from run402_cli.app import run\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    assert run(['deploy', 'release', 'get', '--help']) == 0\n"
             "    assert run([]) == 0\n"
             "print(sorted(m for m, mod in sys.modules.items() if mod is not None and (\n"
             "    m.split('.')[0] in ('typer', 'click', 'httpx') or m.startswith('run402_cli.commands'))))\n")
    import sys

    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
